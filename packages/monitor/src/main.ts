/**
 * `pnpm start:monitor`: the monitor as its own service, state in Redis (or memory when
 * neither REDIS_URL nor REDIS_HOST is set). Prints {"port":N,"pid":P} on stdout once
 * /health and /metrics listen; logs go to stderr. SIGTERM/SIGINT stop it and exit 0.
 *
 * Imported (by the gateway's `pnpm start`) it only re-exports startMonitor: the CLI runs
 * when this file is the entry point.
 */
import { ConfigError, createStateStore, loadConfigOrExit } from '@ai-lb/shared';
import { startMonitor } from './start-monitor.ts';

export { startMonitor } from './start-monitor.ts';

async function main() {
  const config = loadConfigOrExit();
  const store = createStateStore(config);
  let monitor: Awaited<ReturnType<typeof startMonitor>>;
  try {
    monitor = await startMonitor({ config, store });
  } catch (error) {
    await store.close().catch(() => undefined);
    if (!(error instanceof ConfigError) && (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    const message = error instanceof ConfigError ? error.message : `MONITOR_PORT=${config.monitorPort} is already in use`;
    process.stderr.write(`ai-lb: ${message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ port: monitor.port, pid: process.pid, targets: monitor.targets.length })}\n`);

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await monitor.stop();
    await store.close().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
