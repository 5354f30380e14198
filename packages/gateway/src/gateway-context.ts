import type { Clock, Config, StateStore } from '@ai-lb/shared';
import type { SlotLeases } from './capacity/slot-leases.ts';
import type { NodeCooldowns } from './failover/node-cooldowns.ts';
import type { UpstreamPools } from './forwarding/upstream-pool.ts';
import type { Logger } from './logger.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { FleetCache } from './routing/fleet-cache.ts';

/** What route handlers get: built once by createGateway, shared by every request. */
export interface GatewayContext {
  config: Config;
  store: StateStore;
  fleet: FleetCache;
  pools: UpstreamPools;
  leases: SlotLeases;
  /** Retry-After per node, honoured across requests of this process. */
  cooldowns: NodeCooldowns;
  metrics: GatewayMetrics;
  log: Logger;
  clock: Clock;
  random: () => number;
}
