/**
 * The monitor as a component: scans SCAN_HOSTS × SCAN_PORTS on the SCAN_INTERVAL
 * schedule, publishes through the given StateStore, serves /health and /metrics.
 * Used standalone by main.ts and in-process by the gateway's `pnpm start`; the caller
 * owns the store (it is not closed here).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { systemClock, type Clock, type Config, type StateStore } from '@ai-lb/shared';
import { expandTargets, type ScanTarget } from './scan/targets.ts';
import { runScan, type ScanDeps, type ScanReport } from './scan/run-scan.ts';
import { createProbeClient } from './probes/probe-client.ts';
import { createCapacityResolver } from './resolve-capacity.ts';
import { createMonitorMetrics, type MonitorMetrics } from './metrics.ts';
import { createScanScheduler } from './schedule.ts';
import { createMonitorApp, type HealthReport } from './monitor-app.ts';

export interface StartMonitorOptions {
  config: Config;
  store: StateStore;
  clock?: Clock;
  /** Serve /health and /metrics on MONITOR_PORT (default true). */
  listen?: boolean;
  /** Scan at once and then every SCAN_INTERVAL (default true); false leaves scans to scanOnce(). */
  schedule?: boolean;
  log?: (line: string) => void;
}

export interface MonitorHandle {
  /** Runs one scan now (or joins the one running) and publishes it. */
  scanOnce(): Promise<ScanReport>;
  stop(): Promise<void>;
  app: Express;
  /** The port /health and /metrics listen on, null when not listening. */
  port: number | null;
  metrics: MonitorMetrics;
  targets: readonly ScanTarget[];
}

/** Throws ConfigError (one line naming SCAN_HOSTS) when the targets are invalid or too many. */
export async function startMonitor(options: StartMonitorOptions): Promise<MonitorHandle> {
  const { config, store } = options;
  const clock = options.clock ?? systemClock;
  const log = options.log ?? ((line: string) => process.stderr.write(`ai-lb monitor: ${line}\n`));
  const targets = expandTargets(config.scanHosts, config.scanPorts);
  const metrics = createMonitorMetrics();
  const client = createProbeClient({ timeoutMs: config.probeTimeoutMs, apiKeys: config.nodeApiKeys });
  const resolveCapacity = createCapacityResolver(config);
  const status = createScanStatus(config, clock, log);

  const scanDeps: ScanDeps = {
    client,
    targets,
    store,
    metrics,
    clock,
    resolveCapacity,
    concurrency: config.scanConcurrency,
    ttlMs: config.nodeTtlMs,
  };
  const scheduler = createScanScheduler({
    intervalSecs: config.scanIntervalSecs,
    scan: () => scanAndRecord(scanDeps, status),
    onSkip: () => metrics.scansSkipped.inc(),
    onError: () => undefined, // already recorded by status.failed
  });

  const app = createMonitorApp({ registry: metrics.registry, health: status.health });
  let server: Server | null = null;
  try {
    if (options.listen !== false) server = await listen(app, config.monitorPort, config.monitorHost);
  } catch (error) {
    await client.close();
    throw error;
  }
  if (options.schedule !== false) {
    scheduler.start();
    scheduler.runNow().catch(() => undefined);
  }

  return {
    scanOnce: () => scheduler.runNow(),
    async stop() {
      await scheduler.stop();
      if (server) await closeServer(server);
      await client.close();
    },
    app,
    port: server ? (server.address() as AddressInfo).port : null,
    metrics,
    targets,
  };
}

async function scanAndRecord(deps: ScanDeps, status: ScanStatus): Promise<ScanReport> {
  try {
    const report = await runScan(deps);
    status.succeeded(report);
    return report;
  } catch (error) {
    status.failed(error);
    throw error;
  }
}

type ScanStatus = ReturnType<typeof createScanStatus>;

/**
 * What /health reports: 200 once a scan completed and while the last one is recent;
 * 503 before the first scan, after a failed one (the store could not be written), or
 * once the last success is older than the node TTL — by then its records have expired.
 */
function createScanStatus(config: Config, clock: Clock, log: (line: string) => void) {
  const staleAfterMs = Math.max(config.nodeTtlMs, 2 * config.scanIntervalSecs * 1000);
  let lastOk: { report: ScanReport; atMs: number } | undefined;
  let lastError: { message: string; atMs: number } | undefined;
  let lastNodes = '';

  return {
    succeeded(report: ScanReport) {
      lastOk = { report, atMs: clock() };
      lastError = undefined;
      const nodes = report.nodes.map((n) => `${n.node} (${n.kind})`).join(', ');
      if (nodes !== lastNodes) log(`${report.targets} targets scanned in ${Math.round(report.durationMs)} ms; nodes: ${nodes || 'none'}`);
      lastNodes = nodes;
    },
    failed(error: unknown) {
      const message = error instanceof Error ? error.message : String(error);
      lastError = { message, atMs: clock() };
      log(`scan failed: ${message}`);
    },
    health(): HealthReport {
      const now = clock();
      if (lastError)
        return {
          healthy: false,
          body: { status: 'error', reason: `last scan failed: ${lastError.message}`, lastErrorAt: iso(lastError.atMs) },
        };
      if (!lastOk) return { healthy: false, body: { status: 'starting', reason: 'no scan has completed yet' } };
      const ageMs = now - lastOk.atMs;
      const body = {
        lastScanAt: iso(lastOk.atMs),
        lastScanAgeMs: ageMs,
        lastScanDurationMs: Math.round(lastOk.report.durationMs),
        targets: lastOk.report.targets,
        nodes: lastOk.report.nodes.length,
      };
      if (ageMs > staleAfterMs)
        return {
          healthy: false,
          body: { status: 'stale', reason: `last scan completed ${ageMs} ms ago (limit ${staleAfterMs} ms)`, ...body },
        };
      return { healthy: true, body: { status: 'ok', ...body } };
    },
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function listen(app: Express, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(app);
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
