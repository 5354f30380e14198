/**
 * The gateway as `pnpm start` and `pnpm start:gateway` run it: created on a store the
 * caller owns, closed gracefully on stop (in-flight requests get SHUTDOWN_GRACE_SECS).
 */
import { createGateway, type Gateway, type GatewayOptions } from '@ai-lb/gateway';
import type { Logger, StateStore } from '@ai-lb/shared';
import { bindPort, type ServiceContext } from './run-service.ts';

export interface GatewayService {
  gateway: Gateway;
  /** Listens on LOAD_BALANCER_HOST:LOAD_BALANCER_PORT; resolves to the port. */
  listen(): Promise<number>;
}

export async function startGatewayService(
  context: ServiceContext,
  store: StateStore,
  log: Logger,
  options: Pick<GatewayOptions, 'lastScan'> = {},
): Promise<GatewayService> {
  const { config } = context;
  const gateway = await createGateway({ config, store, log, ...options });
  context.onStop(async () => {
    log.info({ inflight: gateway.activeRequests() }, 'draining');
    await gateway.close();
  });
  return {
    gateway,
    async listen() {
      const port = await bindPort('LOAD_BALANCER_PORT', config.port, () => gateway.listen());
      log.info({ port, host: config.host, store: store.kind, strategy: config.routingStrategy }, 'gateway listening');
      return port;
    },
  };
}
