/**
 * The monitor's own HTTP surface on MONITOR_PORT: GET /health, GET /metrics and the fleet
 * dashboard (GET /dashboard, for `pnpm start:monitor` alone: the same page as the gateway's,
 * read from the shared store, with the monitor's last scan and no traffic of its own).
 * Express wiring only; what health means is decided by the caller (start-monitor.ts).
 */
import express, { type Express } from 'express';
import {
  createBearerCheck,
  createDashboardHandler,
  GatewayError,
  readDashboardState,
  type Clock,
  type DashboardScanInput,
  type Logger,
  type StateStore,
} from '@ai-lb/shared';
import type { Registry } from 'prom-client';

export interface HealthReport {
  healthy: boolean;
  body: Record<string, unknown>;
}

/** What the dashboard reads on the monitor. */
export interface MonitorDashboardDeps {
  store: Pick<StateStore, 'listNodes' | 'getCircuits' | 'getInflight' | 'getEngineLoads'>;
  clock: Clock;
  /** The last completed scan, or null before the first. */
  lastScan: () => DashboardScanInput | null;
  /** GATEWAY_API_KEYS: the dashboard's data is behind the same keys as the gateway's API. */
  apiKeys: readonly string[];
  log: Logger;
}

export function createMonitorApp(deps: { registry: Registry; health: () => HealthReport; dashboard?: MonitorDashboardDeps }): Express {
  const app = express();
  app.disable('x-powered-by');

  if (deps.dashboard) {
    const { store, clock, lastScan, apiKeys, log } = deps.dashboard;
    const handler = createDashboardHandler({
      state: () => readDashboardState({ service: 'monitor', store, clock, lastScan }),
      authorize: createBearerCheck(apiKeys),
      onError: (error) => log.warn({ err: error instanceof Error ? error.message : String(error) }, 'dashboard: state unreadable'),
    });
    app.use((req, res, next) => {
      if (!handler(req, res)) next();
    });
  }

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
      `${req.method} ${req.path} is not a monitor endpoint: try GET /health, GET /metrics or GET /dashboard`,
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
