import type { CircuitInfo, Clock, EngineLoadReading, NodeId, StateStore } from '@ai-lb/shared';
import type { Exchange } from '../http/exchange.ts';
import type { FleetCache } from '../routing/fleet-cache.ts';

/**
 * GET /v1/nodes: every known node with fleet-wide in-flight counts and circuit state read
 * live from the store (an operator asking wants the truth, not the 1 s cache); the cache
 * answers if the store does not. Also each record's freshness (`stale`: no monitor has
 * refreshed it within NODE_TTL_SECS, still routed), the MODEL_ALIASES it answers to, its
 * NODE_PRIORITY and the engine's last load reading (as of the cache's last refresh).
 */
export function nodesRoute(store: Pick<StateStore, 'getInflight' | 'getCircuits'>, fleet: FleetCache, clock: Clock) {
  return async function handleNodes(exchange: Exchange): Promise<void> {
    const nodes = fleet.nodes();
    const now = clock();
    const ids = nodes.map((n) => n.node);
    let inflight: Record<NodeId, number>;
    let circuits: Record<NodeId, CircuitInfo>;
    try {
      [inflight, circuits] = await Promise.all([store.getInflight(ids), store.getCircuits(ids)]);
    } catch {
      inflight = Object.fromEntries(ids.map((id) => [id, fleet.inflightOf(id)]));
      circuits = Object.fromEntries(ids.map((id) => [id, fleet.circuit(id)]));
    }
    const data = nodes.map((n) => ({
      node: n.node,
      healthy: n.healthy,
      models: n.models,
      inflight: inflight[n.node] ?? 0,
      maxconn: n.maxconn,
      failures: circuits[n.node]?.failures ?? 0,
      circuit: circuits[n.node]?.state ?? 'closed',
      latency_ms: { probe: n.latencyMs, upstream: roundOrNull(fleet.observedLatency(n.node)) },
      kind: n.kind,
      surfaces: [...fleet.surfacesOf(n.node)],
      capacity_source: n.capacitySource,
      loaded_models: n.loadedModels,
      last_seen_ms: n.lastSeenMs,
      error: n.error,
      freshness: fleet.record(n.node)?.freshness ?? 'fresh',
      stale_for_ms: roundOrNull(fleet.staleForMs(n.node)),
      aliases: fleet.aliasesOf(n),
      priority: fleet.priorityOf(n.node),
      engine: engineBody(fleet.engineLoad(n.node), now),
    }));
    exchange.sendJson(200, { object: 'list', data });
  };
}

function roundOrNull(value: number | null): number | null {
  return value === null ? null : Math.round(value * 10) / 10;
}

/** The engine's reading as routing used it: null when the node has none (kind without a load endpoint, LOAD_POLL_MS=0, stale). */
function engineBody(reading: EngineLoadReading | null, now: number) {
  if (reading === null) return null;
  return {
    running: reading.running,
    waiting: reading.waiting,
    kv_cache_usage: reading.kvCacheUsage,
    loaded_models: reading.loadedModels,
    age_ms: Math.max(0, now - reading.at),
  };
}
