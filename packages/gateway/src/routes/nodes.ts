import type { Request, Response } from 'express';
import type { CircuitInfo, NodeId } from '@ai-lb/shared';
import type { GatewayContext } from '../gateway-context.ts';
import { sendJson } from '../http/send-json.ts';

/**
 * GET /v1/nodes: every known node with fleet-wide in-flight counts and circuit state read
 * live from the store (an operator asking wants the truth, not the 1 s cache); the cache
 * answers if the store does not.
 */
export function nodesRoute(ctx: GatewayContext) {
  return async function handleNodes(_req: Request, res: Response): Promise<void> {
    const nodes = ctx.fleet.nodes();
    const ids = nodes.map((n) => n.node);
    let inflight: Record<NodeId, number>;
    let circuits: Record<NodeId, CircuitInfo>;
    try {
      [inflight, circuits] = await Promise.all([ctx.store.getInflight(ids), ctx.store.getCircuits(ids)]);
    } catch {
      inflight = Object.fromEntries(ids.map((id) => [id, ctx.fleet.inflightOf(id)]));
      circuits = Object.fromEntries(ids.map((id) => [id, ctx.fleet.circuit(id)]));
    }
    const data = nodes.map((n) => ({
      node: n.node,
      healthy: n.healthy,
      models: n.models,
      inflight: inflight[n.node] ?? 0,
      maxconn: n.maxconn,
      failures: circuits[n.node]?.failures ?? 0,
      circuit: circuits[n.node]?.state ?? 'closed',
      latency_ms: { probe: n.latencyMs, upstream: roundOrNull(ctx.fleet.observedLatency(n.node)) },
      kind: n.kind,
      capacity_source: n.capacitySource,
      loaded_models: n.loadedModels,
      last_seen_ms: n.lastSeenMs,
      error: n.error,
    }));
    sendJson(res, 200, { object: 'list', data });
  };
}

function roundOrNull(value: number | null): number | null {
  return value === null ? null : Math.round(value * 10) / 10;
}
