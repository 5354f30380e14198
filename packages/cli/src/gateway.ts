/**
 * `pnpm start:gateway`: one gateway replica, state in Redis (REDIS_URL, or REDIS_HOST /
 * REDIS_PORT, default localhost:6379). Ready line: {"port":N,"pid":P,"store":"redis","monitorPort":null}.
 */
import { createStateStore } from '@ai-lb/shared';
import { startGatewayService } from './gateway-service.ts';
import { runService } from './run-service.ts';

await runService('gateway', async (context) => {
  const { config, log } = context;
  const store = createStateStore(config, {
    forceRedis: true,
    // Redis trouble must not stop the fleet: each replica goes on with its last fleet and
    // local-only capacity (degraded, reported by /health and metrics) and returns by itself.
    resilient: true,
    log,
  });
  context.onStop(() => store.close());
  const service = await startGatewayService(context, store, log);
  const port = await service.listen();
  return { port, store: store.kind, monitorPort: null };
});
