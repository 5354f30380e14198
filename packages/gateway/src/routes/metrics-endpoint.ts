import type { Request, Response } from 'express';
import type { GatewayContext } from '../gateway-context.ts';

/** GET /metrics: Prometheus text format from the gateway's own registry. */
export function metricsRoute(ctx: GatewayContext) {
  return async function handleMetrics(_req: Request, res: Response): Promise<void> {
    const body = await ctx.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': ctx.metrics.registry.contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}
