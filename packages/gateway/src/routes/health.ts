import type { Request, Response } from 'express';
import type { GatewayContext } from '../gateway-context.ts';
import { sendJson } from '../http/send-json.ts';

const PING_TIMEOUT_MS = 1000;

/**
 * GET /health: 200 while the state store answers and at least MIN_HEALTHY_NODES nodes are
 * healthy; 503 with the reason otherwise (load balancers and compose healthchecks read it).
 */
export function healthRoute(ctx: GatewayContext) {
  return async function handleHealth(_req: Request, res: Response): Promise<void> {
    const healthy = ctx.fleet.healthyCount();
    const base = { store: ctx.store.kind, healthy_nodes: healthy, nodes: ctx.fleet.nodes().length };
    const reason = await unhealthyReason(ctx, healthy);
    if (reason === null) return sendJson(res, 200, { status: 'ok', ...base });
    sendJson(res, 503, {
      status: 'unavailable',
      reason,
      ...base,
      error: { message: reason, type: 'service_unavailable', param: null, code: 'unhealthy' },
    });
  };
}

async function unhealthyReason(ctx: GatewayContext, healthy: number): Promise<string | null> {
  try {
    await withTimeout(ctx.store.ping(), PING_TIMEOUT_MS);
  } catch (error) {
    return `state store unreachable: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (!ctx.fleet.stateReadable) return `fleet state unreadable: ${ctx.fleet.lastError ?? 'unknown error'}`;
  const min = ctx.config.minHealthyNodes;
  if (healthy < min) return `${healthy} healthy node${healthy === 1 ? '' : 's'}, MIN_HEALTHY_NODES is ${min}`;
  return null;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
