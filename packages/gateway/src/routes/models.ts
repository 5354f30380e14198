import { GatewayError, type NodeState } from '@ai-lb/shared';
import type { Exchange } from '../http/exchange.ts';
import type { FleetCache } from '../routing/fleet-cache.ts';

interface ModelEntry {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

/** The union of models over healthy nodes, de-duplicated by id, in node-id order. */
function listModels(nodes: readonly NodeState[]): ModelEntry[] {
  const seen = new Map<string, ModelEntry>();
  for (const node of nodes) {
    if (!node.healthy) continue;
    for (const id of node.models) {
      if (seen.has(id)) continue;
      seen.set(id, { id, object: 'model', created: Math.floor(node.lastSeenMs / 1000), owned_by: node.kind });
    }
  }
  return [...seen.values()];
}

/** GET /v1/models */
export function modelsRoute(fleet: Pick<FleetCache, 'nodes'>) {
  return function handleModels(exchange: Exchange): void {
    exchange.sendJson(200, { object: 'list', data: listModels(fleet.nodes()) });
  };
}

/** GET /v1/models/:id (what the SDKs' models.retrieve calls). */
export function modelRoute(fleet: Pick<FleetCache, 'nodes'>) {
  return function handleModel(exchange: Exchange, params: Readonly<Record<string, string>>): void {
    const { id } = params;
    const model = listModels(fleet.nodes()).find((m) => m.id === id);
    if (model === undefined)
      throw new GatewayError('model_not_found', `The model '${id.slice(0, 200)}' does not exist`, { param: 'model' });
    exchange.sendJson(200, model);
  };
}
