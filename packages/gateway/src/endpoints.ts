import type { GatewayServices } from './create-gateway.ts';
import { secretsOf } from './forwarding/redact-secrets.ts';
import type { Endpoint } from './http/router.ts';
import { chatCompletions } from './routes/chat-completions.ts';
import { eligibleNodesRoute } from './routes/eligible-nodes.ts';
import { embeddings } from './routes/embeddings.ts';
import { healthRoute } from './routes/health.ts';
import { inferenceRoute, type InferenceDeps, type InferenceSurface } from './routes/inference-route.ts';
import { metricsRoute } from './routes/metrics-endpoint.ts';
import { modelRoute, modelsRoute } from './routes/models.ts';
import { nodesRoute } from './routes/nodes.ts';

/**
 * Every endpoint of the gateway, declared once: method, path, whether it needs the API key,
 * what body it reads, its error format, and the handler with the dependencies it uses. The
 * router (http/router.ts) serves exactly this table. A pass-through API surface is one route
 * file (its InferenceSurface) and one line here.
 */
export function gatewayEndpoints(services: GatewayServices): Endpoint[] {
  const { config, store, fleet, metrics, dashboard } = services;
  const deps = inferenceDeps(services);
  const routed = (path: string, surface: InferenceSurface): Endpoint => ({
    method: 'POST',
    path,
    auth: true,
    body: 'json',
    errors: 'openai',
    surface: surface.name,
    handle: inferenceRoute(deps, surface),
  });
  const admin = (path: string, handle: Endpoint['handle'], auth = true): Endpoint => ({
    method: 'GET',
    path,
    auth,
    body: 'none',
    errors: 'openai',
    handle,
  });
  return [
    routed('/v1/chat/completions', chatCompletions),
    routed('/v1/embeddings', embeddings),
    admin('/v1/models', modelsRoute(fleet)),
    admin('/v1/models/:id', modelRoute(fleet)),
    admin('/v1/nodes', nodesRoute(store, fleet)),
    admin('/v1/eligible_nodes', eligibleNodesRoute(config, fleet)),
    // Open for load balancers, orchestrators and scrapers.
    admin('/health', healthRoute(store, fleet, config.minHealthyNodes), false),
    admin('/metrics', metricsRoute(metrics.registry), false),
    // The page and its files hold no data: open, so a browser can load them and ask for a key.
    admin('/dashboard', dashboard.page, false),
    admin('/dashboard/assets/:name', dashboard.page, false),
    admin('/dashboard/state', dashboard.state),
  ];
}

function inferenceDeps(services: GatewayServices): InferenceDeps {
  const { config } = services;
  return {
    config,
    fleet: services.fleet,
    leases: services.leases,
    cooldowns: services.cooldowns,
    pools: services.pools,
    metrics: services.metrics,
    log: services.log,
    clock: services.clock,
    random: services.random,
    timeouts: config,
    nodeApiKeys: config.nodeApiKeys,
    secrets: secretsOf(config.nodeApiKeys, config.gatewayApiKeys),
    budget: services.budget,
  };
}
