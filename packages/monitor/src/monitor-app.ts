/**
 * The monitor's own HTTP surface on MONITOR_PORT: GET /health and GET /metrics.
 * Express wiring only; what health means is decided by the caller (start-monitor.ts).
 */
import express, { type Express } from 'express';
import { GatewayError } from '@ai-lb/shared';
import type { Registry } from 'prom-client';

export interface HealthReport {
  healthy: boolean;
  body: Record<string, unknown>;
}

export function createMonitorApp(deps: { registry: Registry; health: () => HealthReport }): Express {
  const app = express();
  app.disable('x-powered-by');

  app.get('/health', (_req, res) => {
    const report = deps.health();
    res.status(report.healthy ? 200 : 503).json(report.body);
  });

  app.get('/metrics', async (_req, res, next) => {
    try {
      res.type(deps.registry.contentType).send(await deps.registry.metrics());
    } catch (error) {
      next(error);
    }
  });

  app.use((req, res) => {
    const error = new GatewayError(
      'route_not_found',
      `${req.method} ${req.path} is not a monitor endpoint: try GET /health or GET /metrics`,
    );
    res.status(error.status).json(error.toEnvelope());
  });

  app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    process.stderr.write(`ai-lb monitor: ${error instanceof Error ? error.message : String(error)}\n`);
    const envelope = new GatewayError('internal_error', 'internal error').toEnvelope();
    res.status(500).json(envelope);
  });
  return app;
}
