/**
 * Composition root of the gateway process:
 *
 *   pnpm start:gateway   node <V8 flags> --import tsx packages/gateway/src/main.ts    state in Redis
 *   pnpm start           … main.ts --with-monitor   gateway + monitor in one process;
 *                        in-memory state unless REDIS_URL / REDIS_HOST is set
 * (V8 flags: SHIPPED_V8 in bench/bench-options.ts, the same as the Dockerfile's.)
 *
 * Prints {"port":N,"pid":P,...} as its FIRST stdout line once listening (LOAD_BALANCER_PORT=0
 * picks a free port; tests and the benchmark read that line); logs go to stderr.
 * SIGTERM/SIGINT: stop accepting, let in-flight requests finish (SHUTDOWN_GRACE_SECS), exit 0.
 */
import { createLogger, createStateStore, loadConfigOrExit, type Logger, type StateStore } from '@ai-lb/shared';
import type { MonitorHandle } from '@ai-lb/monitor';
import { createGateway, type Gateway } from './create-gateway.ts';

async function main(): Promise<void> {
  const withMonitor = process.argv.includes('--with-monitor');
  const config = loadConfigOrExit();
  const log = createLogger({ level: config.logLevel });
  const store = createStateStore(config, {
    forceRedis: !withMonitor,
    // Redis trouble must not stop the fleet: each replica goes on with its last fleet and
    // local-only capacity (degraded, reported by /health and metrics) and returns by itself.
    resilient: true,
    log: (line) => log.warn(line),
  });
  const gateway = await createGateway({ config, store, log });
  let monitor: MonitorHandle | undefined;
  try {
    if (withMonitor) {
      // Loaded only when asked for: `start:gateway` never pays for the scanner.
      const { startMonitor } = await import('@ai-lb/monitor');
      monitor = await startMonitor({ config, store });
    }
    const port = await gateway.listen();
    process.stdout.write(`${JSON.stringify({ port, pid: process.pid, store: store.kind, monitorPort: monitor?.port ?? null })}\n`);
    log.info({ port, host: config.host, store: store.kind, strategy: config.routingStrategy, monitor: withMonitor }, 'gateway listening');
  } catch (error) {
    await stopAll(gateway, monitor, store);
    fail(error, config.port);
  }
  handleSignals(gateway, monitor, store, log);
}

function handleSignals(gateway: Gateway, monitor: MonitorHandle | undefined, store: StateStore, log: Logger): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, inflight: gateway.activeRequests() }, 'shutting down');
    await stopAll(gateway, monitor, store);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // One broken request must not take the whole gateway down: log it and keep serving.
  process.on('unhandledRejection', (reason) => log.error({ error: String(reason) }, 'unhandled rejection'));
}

async function stopAll(gateway: Gateway, monitor: MonitorHandle | undefined, store: StateStore): Promise<void> {
  await gateway.close().catch(() => undefined);
  await monitor?.stop().catch(() => undefined);
  await store.close().catch(() => undefined);
}

/** Startup failures are one line (no stack trace) and exit 1. */
function fail(error: unknown, port: number): never {
  const code = (error as NodeJS.ErrnoException)?.code;
  const message =
    code === 'EADDRINUSE'
      ? `LOAD_BALANCER_PORT=${port} (or MONITOR_PORT) is already in use`
      : error instanceof Error
        ? error.message
        : String(error);
  process.stderr.write(`ai-lb: ${message}\n`);
  process.exit(1);
}

// An entry point only (nothing imports it), so it runs unconditionally.
await main();
