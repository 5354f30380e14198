/**
 * `pnpm start`: gateway and monitor in one process on one store, in memory unless
 * REDIS_URL / REDIS_HOST is set. Ready line once both listen:
 * {"port":N,"pid":P,"store":"memory"|"redis","monitorPort":M,"targets":T}.
 */
import { startMonitor } from '@ai-lb/monitor';
import { createStateStore } from '@ai-lb/shared';
import { startGatewayService } from './gateway-service.ts';
import { bindPort, runService } from './run-service.ts';

await runService('ai-lb', async (context) => {
  const { config, log, logFor } = context;
  // With Redis configured, the same resilience as a `start:gateway` replica.
  const store = createStateStore(config, { resilient: true, log });
  context.onStop(() => store.close());
  const monitor = await bindPort('MONITOR_PORT', config.monitorPort, () => startMonitor({ config, store, log: logFor('monitor') }));
  context.onStop(() => monitor.stop());
  // Created last, so a SIGTERM closes it first: new requests are refused at once.
  // The gateway's dashboard shows the scans of the monitor beside it.
  const gateway = await startGatewayService(context, store, logFor('gateway'), { lastScan: monitor.lastScan });
  const port = await gateway.listen();
  return { port, store: store.kind, monitorPort: monitor.port, targets: monitor.targets.length };
});
