import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  accessLogger,
  ByteBudget,
  GATEWAY_MARK_HEADER,
  silentLogger,
  type Clock,
  type Config,
  type DashboardScanInput,
  type Logger,
  type StateStore,
} from '@ai-lb/shared';
import { SlotLeases } from './capacity/slot-leases.ts';
import { gatewayEndpoints } from './endpoints.ts';
import { NodeCooldowns } from './failover/with-failover.ts';

import { AttemptError } from './forwarding/attempt-error.ts';
import { createRouter } from './http/router.ts';
import { GatewayMetrics } from './metrics.ts';
import { createGatewayDashboard, type GatewayDashboard } from './observability/gateway-dashboard.ts';
import { createTracer, type RequestTracer } from './observability/tracing.ts';
import { FleetCache, UpstreamPools } from './routing/fleet-cache.ts';

export interface GatewayOptions {
  config: Config;
  /** Owned by the caller: close() leaves it open. */
  store: StateStore;
  log?: Logger;
  clock?: Clock;
  random?: () => number;
  /** Fleet cache refresh period on top of change notifications (default 1 s). */
  fleetRefreshMs?: number;
  /** How often this replica shares its in-flight counts and reports batched outcomes (default 100 ms). */
  reportIntervalMs?: number;
  /** The last discovery scan, for the dashboard, where a monitor runs in the same process (`pnpm start`). */
  lastScan?: () => DashboardScanInput | null;
  /** How long a finished request may wait for the dashboard's drain (default 25 ms). */
  dashboardDrainMs?: number;
}

/** The long-lived parts of a gateway, built once; each endpoint is handed the ones it uses. */
export interface GatewayServices {
  config: Config;
  store: StateStore;
  fleet: FleetCache;
  pools: UpstreamPools;
  leases: SlotLeases;
  /** Retry-After per node, honoured across requests of this process. */
  cooldowns: NodeCooldowns;
  metrics: GatewayMetrics;
  dashboard: GatewayDashboard;
  /** OpenTelemetry, when OTEL_EXPORTER_OTLP_ENDPOINT is set; else null. */
  tracer: RequestTracer | null;
  /** BUFFER_BUDGET_MB: every body held whole (requests and answers) counts against it. */
  budget: ByteBudget;
  log: Logger;
  clock: Clock;
  random: () => number;
}

export interface Gateway {
  server: Server;
  services: GatewayServices;
  /** Listens (port 0 = any free port) and resolves with the port. */
  listen(port?: number, host?: string): Promise<number>;
  /** Re-reads the fleet now (tests, after writing node records). */
  refreshFleet(): Promise<void>;
  /** Requests being answered right now. */
  activeRequests(): number;
  /** Stops accepting, lets in-flight requests finish within graceMs (default SHUTDOWN_GRACE_SECS), frees everything. */
  close(graceMs?: number): Promise<void>;
}

/** Builds the whole gateway around a store: fleet cache, capacity, pools, metrics, the router, the HTTP server. */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const services = buildServices(options, await createTracer(options.config, options.log ?? silentLogger));
  await services.fleet.start();
  services.leases.start();
  const router = createRouter(gatewayEndpoints(services), {
    apiKeys: options.config.gatewayApiKeys,
    log: services.log,
    onFinished: services.metrics,
    limits: { budget: services.budget, clientWriteTimeoutMs: options.config.clientWriteTimeoutMs },
    corsOrigins: options.config.corsOrigins,
    tracer: services.tracer,
  });
  const server = createServer(router);
  // Idle client connections are kept a while for reuse; streams are not bounded by this.
  server.keepAliveTimeout = 65_000;
  server.on('clientError', (error, socket) => rejectBadRequest(socket, error));
  // Read once per connection, so the socket keeps it: the access log still knows a client that left mid-request.
  server.on('connection', (socket) => void socket.remoteAddress);

  let closing: Promise<void> | undefined;
  const close = (graceMs = options.config.shutdownGraceMs) => {
    closing ??= (async () => {
      server.close();
      // In-flight requests (streams included) may finish; bounded by the grace period.
      const deadline = Date.now() + graceMs;
      while (router.active() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      // Requests still running past the grace period are cut: a stream gets its error event
      // first (its attempt is aborted with the reason), never a silent end.
      const shutdown = new AttemptError('AI_LB_SHUTDOWN', 'the gateway is shutting down');
      let cut = 0;
      for (const exchange of router.routed()) {
        cut++;
        exchange.clientGone.abort(shutdown);
      }
      if (cut > 0) await new Promise((r) => setTimeout(r, 50));
      server.closeAllConnections();
      services.fleet.stop();
      services.leases.stop();
      services.dashboard.stop();
      await services.pools.close();
      await services.tracer?.shutdown();
    })();
    return closing;
  };

  return {
    server,
    services,
    listen: (port = options.config.port, host = options.config.host) => listen(server, port, host),
    refreshFleet: () => services.fleet.refresh(),
    activeRequests: () => router.active(),
    close,
  };
}

function buildServices(options: GatewayOptions, tracer: RequestTracer | null): GatewayServices {
  const { config, store } = options;
  const log = options.log ?? silentLogger;
  const clock = options.clock ?? Date.now;
  const metrics = new GatewayMetrics({ accessLog: config.logRequests ? accessLogger(log) : null });
  const onStoreError = storeErrorLogger(log);
  const pools = new UpstreamPools({ connectTimeoutMs: Math.min(config.requestTimeoutMs, 10_000) });
  const fleet = new FleetCache(store, {
    refreshMs: options.fleetRefreshMs ?? 1000,
    clock,
    loadPollMs: config.loadPollMs,
    staleLimitMs: config.fleetStaleLimitMs,
    aliases: config.modelAliases,
    priorities: config.nodePriority,
    onNodeSetChanged: (nodes) => pools.retain(nodes),
    onError: onStoreError,
  });
  const leases = new SlotLeases(store, {
    leaseMs: config.slotLeaseMs,
    probeLeaseMs: Math.max(1000, config.requestTimeoutMs),
    queueTimeoutMs: config.queueTimeoutMs,
    breaker: { threshold: config.circuitBreakerThreshold, ttlMs: config.circuitBreakerTtlMs },
    clock,
    onError: onStoreError,
    fleet,
    reportIntervalMs: options.reportIntervalMs ?? 100,
    onQueueWait: (seconds, result) => metrics.queueWait.observe({ result }, seconds),
    placements: {
      local: metrics.placements.labels({ via: 'local' }),
      reserve: metrics.placements.labels({ via: 'reserve' }),
      store: metrics.placements.labels({ via: 'store' }),
    },
  });
  fleet.countAttemptsOnly((node) => leases.idleOf(node));
  metrics.watch({ fleet, store, queue: leases.queue, reserves: leases });
  const dashboard = createGatewayDashboard({
    fleet,
    queue: leases.queue,
    metrics,
    clock,
    lastScan: options.lastScan,
    drainMs: options.dashboardDrainMs,
  });
  return {
    config,
    store,
    fleet,
    pools,
    leases,
    cooldowns: new NodeCooldowns(clock),
    metrics,
    dashboard,
    tracer,
    budget: new ByteBudget(config.bufferBudgetMb * 1024 * 1024),
    log,
    clock,
    random: options.random ?? Math.random,
  };
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** One log line per kind of store trouble per minute, not one per request. */
function storeErrorLogger(log: Logger): (error: unknown) => void {
  const lastAt = new Map<string, number>();
  return (error) => {
    const message = error instanceof Error ? error.message : String(error);
    const now = Date.now();
    if ((lastAt.get(message) ?? 0) > now - 60_000) return;
    lastAt.set(message, now);
    log.warn({ error: message }, 'state store error');
  };
}

/** Malformed HTTP from a client: a 400 envelope (with the gateway mark), no stack trace. */
function rejectBadRequest(socket: NodeJS.WritableStream & { writable: boolean; destroy(): void }, error: Error & { code?: string }): void {
  if (!socket.writable) return socket.destroy();
  const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const body = JSON.stringify({
    error: { message: 'malformed HTTP request', type: 'invalid_request_error', param: null, code: 'bad_request' },
  });
  socket.end(
    `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `${GATEWAY_MARK_HEADER}: 1\r\nconnection: close\r\n\r\n${body}`,
  );
}
