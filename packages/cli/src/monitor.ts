/**
 * `pnpm start:monitor`: the monitor as its own service, writing the fleet to Redis (or to
 * memory when neither REDIS_URL nor REDIS_HOST is set). Ready line once /health and
 * /metrics listen: {"port":N,"pid":P,"targets":T}.
 */
import { startMonitor } from '@ai-lb/monitor';
import { createStateStore } from '@ai-lb/shared';
import { bindPort, runService } from './run-service.ts';

await runService('monitor', async ({ config, log, onStop }) => {
  const store = createStateStore(config, { log });
  onStop(() => store.close());
  const monitor = await bindPort('MONITOR_PORT', config.monitorPort, () => startMonitor({ config, store, log }));
  onStop(() => monitor.stop());
  log.info({ port: monitor.port, targets: monitor.targets.length }, 'monitor listening');
  return { port: monitor.port!, targets: monitor.targets.length };
});
