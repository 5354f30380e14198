/**
 * The monitor as a component: scans SCAN_HOSTS × SCAN_PORTS on the SCAN_INTERVAL
 * schedule, publishes through the given StateStore, serves /health and /metrics.
 * Run by the cli (`pnpm start:monitor` alone, `pnpm start` beside the gateway); the caller
 * owns the store (it is not closed here). Several monitors may share one store: the one
 * holding the monitor lease scans, the others stand by (monitor-lease.ts).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { silentLogger, systemClock, type Clock, type Config, type Logger, type StateStore } from '@ai-lb/shared';
import { expandTargets, type ScanTarget } from './scan/targets.ts';
import { runScan, type ScanDeps, type ScanReport } from './scan/run-scan.ts';
import { createProbeClient } from './probes/probe-client.ts';
import { createCapacityResolver } from './resolve-capacity.ts';
import { createMonitorMetrics, type MonitorMetrics } from './metrics.ts';
import { createScanScheduler } from './schedule.ts';
import { createMonitorApp, type HealthReport } from './monitor-app.ts';
import { createMonitorLeaseKeeper, monitorLeaseMs, newMonitorId, type MonitorLeaseKeeper } from './monitor-lease.ts';
import { startLoadPolling } from './load/start-load-polling.ts';
import type { LoadPollReport } from './load/load-poll-loop.ts';

export interface StartMonitorOptions {
  config: Config;
  store: StateStore;
  clock?: Clock;
  /** Serve /health and /metrics on MONITOR_PORT (default true). */
  listen?: boolean;
  /**
   * Scan at once and then every SCAN_INTERVAL while this monitor holds the monitor lease
   * (default true); false leaves scans to scanOnce() and takes no lease.
   */
  schedule?: boolean;
  /** Names this monitor in the lease and the scan record; host:pid:random by default. */
  monitorId?: string;
  log?: Logger;
}

export interface MonitorHandle {
  /** Runs one scan now (or joins the one running) and publishes it, lease or not. */
  scanOnce(): Promise<ScanReport>;
  /** The last scan that completed, or null before the first (the dashboard's scan panel). */
  lastScan(): ScanReport | null;
  /** Polls every known node's engine load now (or joins the round running) and publishes it. */
  pollLoadsOnce(): Promise<LoadPollReport>;
  monitorId: string;
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
  const log = options.log ?? silentLogger;
  const targets = expandTargets(config.scanHosts, config.scanPorts);
  const metrics = createMonitorMetrics();
  const client = createProbeClient({ timeoutMs: config.probeTimeoutMs, apiKeys: config.nodeApiKeys });
  const resolveCapacity = createCapacityResolver(config);
  const monitorId = options.monitorId ?? newMonitorId();

  const scanDeps: ScanDeps = {
    client,
    targets,
    store,
    metrics,
    clock,
    resolveCapacity,
    concurrency: config.scanConcurrency,
    ttlMs: config.nodeTtlMs,
    keepMs: config.fleetStaleLimitMs,
    monitorId,
  };
  let lease: MonitorLeaseKeeper | null = null;
  const scheduler = createScanScheduler({
    intervalSecs: config.scanIntervalSecs,
    scan: () => scanAndRecord(scanDeps, status),
    onSkip: () => metrics.scansSkipped.inc(),
    onError: () => undefined, // already recorded by status.failed
    shouldRun: () => lease?.held ?? true,
  });
  if (options.schedule !== false) {
    lease = createMonitorLeaseKeeper({
      store,
      monitorId,
      leaseMs: monitorLeaseMs(config.scanIntervalSecs),
      onGained: () => void scheduler.runNow().catch(() => undefined),
      onChange: (held, holder) => {
        metrics.leaseHeld.set(held ? 1 : 0);
        if (held) log.info({ monitorId }, 'holding the monitor lease: scanning');
        else log.info({ monitorId, holder: holder ?? null }, 'standing by: another monitor holds the lease');
      },
    });
  }
  const status = createScanStatus(config, clock, log, lease);

  const app = createMonitorApp({
    registry: metrics.registry,
    health: status.health,
    dashboard: { store, clock, lastScan: status.lastReport, apiKeys: config.gatewayApiKeys, log },
  });
  let server: Server | null = null;
  try {
    if (options.listen !== false) server = await listen(app, config.monitorPort, config.monitorHost);
  } catch (error) {
    await client.close();
    throw error;
  }
  if (lease) {
    scheduler.start();
    await lease.start(); // the holder's first scan starts here (onGained)
  }
  const loadPolling = startLoadPolling({
    config,
    store,
    clock,
    registry: metrics.registry,
    log,
    start: options.schedule !== false,
    // Like scans, one monitor polls: the lease holder (a standby's readings would only repeat it).
    shouldRun: () => lease?.held ?? true,
  });

  return {
    scanOnce: () => scheduler.runNow(),
    lastScan: status.lastReport,
    pollLoadsOnce: () => loadPolling.pollOnce(),
    monitorId,
    async stop() {
      await Promise.all([scheduler.stop(), loadPolling.stop()]);
      // After the last scan: a standby takes over at once instead of after the lease.
      await lease?.stop();
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
 * once the last success is older than the node TTL — by then its records are stale.
 * A standby (another monitor holds the lease) is 200 `standby`; one that cannot reach
 * the store to ask for the lease is 503.
 */
function createScanStatus(config: Config, clock: Clock, log: Logger, lease: MonitorLeaseKeeper | null) {
  const staleAfterMs = Math.max(config.nodeTtlMs, 2 * config.scanIntervalSecs * 1000);
  let lastOk: { report: ScanReport; atMs: number } | undefined;
  let lastError: { message: string; atMs: number } | undefined;
  let lastNodes = '';

  return {
    lastReport: (): ScanReport | null => lastOk?.report ?? null,
    succeeded(report: ScanReport) {
      lastOk = { report, atMs: clock() };
      lastError = undefined;
      // A line when the fleet changes, not one per scan.
      const nodes = report.nodes.map((n) => ({ node: n.node, kind: n.kind }));
      const fingerprint = JSON.stringify(nodes);
      if (fingerprint !== lastNodes)
        log.info({ targets: report.targets, durationMs: Math.round(report.durationMs), nodes }, 'fleet changed');
      lastNodes = fingerprint;
    },
    failed(error: unknown) {
      const message = error instanceof Error ? error.message : String(error);
      lastError = { message, atMs: clock() };
      log.warn({ err: message }, 'scan failed');
    },
    health(): HealthReport {
      const now = clock();
      if (lease && !lease.held) {
        if (lease.lastError !== null)
          return { healthy: false, body: { status: 'error', reason: `cannot ask for the monitor lease: ${lease.lastError}` } };
        if (lease.holder !== null) return { healthy: true, body: { status: 'standby', holder: lease.holder } };
      }
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
