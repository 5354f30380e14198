/**
 * A node's cap on concurrent requests: MAXCONN_MAP over what the
 * server itself reports over DEFAULT_MAXCONN. 0 means no cap, also when it comes from
 * MAXCONN_MAP (an explicit "no cap for this node").
 */
import type { CapacitySource, Config, NodeId } from '@ai-lb/shared';

export interface ResolvedCapacity {
  maxconn: number;
  capacitySource: CapacitySource;
}

export type CapacityResolver = (node: NodeId, detectedMaxconn: number | null) => ResolvedCapacity;

export function createCapacityResolver(config: Pick<Config, 'maxconnMap' | 'defaultMaxconn'>): CapacityResolver {
  // Config keys are canonical node ids already (config/parsers.ts nodeMap).
  const map = config.maxconnMap;
  return (node, detectedMaxconn) => {
    const mapped = map.get(node);
    if (mapped !== undefined) return { maxconn: mapped, capacitySource: 'map' };
    if (detectedMaxconn !== null && detectedMaxconn > 0) return { maxconn: detectedMaxconn, capacitySource: 'detected' };
    return { maxconn: config.defaultMaxconn, capacitySource: 'default' };
  };
}
