import type { StateStore } from '@ai-lb/shared';
import type { Exchange } from '../http/exchange.ts';
import type { FleetCache } from '../routing/fleet-cache.ts';

const PING_TIMEOUT_MS = 1000;

/**
 * GET /health: 200 while the state store answers and at least MIN_HEALTHY_NODES nodes are
 * healthy; 503 with the reason otherwise (load balancers and compose healthchecks read it).
 *
 * Redis unreachable is 200 `"status":"degraded"` with the reason, not 503: every replica
 * loses the same Redis at the same moment, so a 503 would make the load balancer in front
 * pull the whole fleet at once — while each replica can still serve on its last fleet
 * state with local-only caps. Monitoring alerts on the status field and on
 * ai_lb_state_store_degraded instead. A replica that never read a fleet is still 503.
 */
export function healthRoute(store: StateStore, fleet: FleetCache, minHealthyNodes: number) {
  return async function handleHealth(exchange: Exchange): Promise<void> {
    const healthy = fleet.healthyCount();
    const base = { store: store.kind, healthy_nodes: healthy, nodes: fleet.nodes().length };
    const reason = await unhealthyReason(store, fleet, healthy, minHealthyNodes);
    const degraded = degradedReason(store);
    if (reason === null && degraded !== null) return exchange.sendJson(200, { status: 'degraded', reason: degraded, ...base });
    if (reason === null) return exchange.sendJson(200, { status: 'ok', ...base });
    exchange.sendJson(503, {
      status: 'unavailable',
      reason,
      ...base,
      error: { message: reason, type: 'service_unavailable', param: null, code: 'unhealthy' },
    });
  };
}

async function unhealthyReason(store: StateStore, fleet: FleetCache, healthy: number, min: number): Promise<string | null> {
  try {
    await withTimeout(store.ping(), PING_TIMEOUT_MS);
  } catch (error) {
    return `state store unreachable: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (!fleet.stateReadable) return `fleet state unreadable: ${fleet.lastError ?? 'unknown error'}`;
  if (healthy < min) return `${healthy} healthy node${healthy === 1 ? '' : 's'}, MIN_HEALTHY_NODES is ${min}`;
  return null;
}

/** Set while the store serves on local state because Redis is unreachable (StateStore.health). */
function degradedReason(store: StateStore): string | null {
  const { degraded, reason } = store.health();
  if (!degraded) return null;
  return `state store degraded: Redis unreachable, serving the last known fleet with per-replica capacity (${reason ?? 'unknown error'})`;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
