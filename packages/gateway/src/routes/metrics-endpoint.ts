import type { Registry } from 'prom-client';
import type { Exchange } from '../http/exchange.ts';

/** GET /metrics: Prometheus text format from the gateway's own registry. */
export function metricsRoute(registry: Registry) {
  return async function handleMetrics(exchange: Exchange): Promise<void> {
    exchange.send(200, { 'content-type': registry.contentType }, await registry.metrics());
  };
}
