import type { GatewayServices } from './create-gateway.ts';
import { secretsOf } from './forwarding/redact-secrets.ts';
import type { Endpoint } from './http/router.ts';
import type { ErrorFormat } from './http/error-formats.ts';
import { chatCompletions } from './routes/chat-completions.ts';
import { completions } from './routes/completions.ts';
import { eligibleNodesRoute } from './routes/eligible-nodes.ts';
import { embeddings } from './routes/embeddings.ts';
import { healthRoute } from './routes/health.ts';
import { inferenceRoute, type InferenceDeps, type InferenceSurface } from './routes/inference-route.ts';
import { countTokensRoute, messages } from './routes/messages.ts';
import { metricsRoute } from './routes/metrics-endpoint.ts';
import { modelRoute, modelsRoute } from './routes/models.ts';
import { nodesRoute } from './routes/nodes.ts';
import {
  ollamaChat,
  ollamaEmbed,
  ollamaEmbeddings,
  ollamaGenerate,
  ollamaPsRoute,
  ollamaShowRoute,
  ollamaTagsRoute,
  ollamaVersionRoute,
} from './routes/ollama.ts';
import { audioSpeech, audioTranscriptions, audioTranslations, imagesGenerations, rerank, rerankV2, score } from './routes/passthrough.ts';
import { responseByIdRoute, responsesSurface } from './routes/responses.ts';

/**
 * Every endpoint of the gateway, declared once: method, path, whether it needs the API key,
 * what body it reads, its error format, and the handler with the dependencies it uses. The
 * router (http/router.ts) serves exactly this table. A pass-through API surface is one route
 * file (its InferenceSurface) and one line here.
 */
export function gatewayEndpoints(services: GatewayServices): Endpoint[] {
  const { config, store, fleet, metrics, pools, log, dashboard } = services;
  const deps = inferenceDeps(services);
  const routed = (path: string, surface: InferenceSurface, errors: ErrorFormat = 'openai'): Endpoint => ({
    method: 'POST',
    path,
    auth: true,
    body: surface.body ?? 'json',
    errors,
    surface: surface.name,
    handle: inferenceRoute(deps, surface),
  });
  const admin = (path: string, handle: Endpoint['handle'], options: { auth?: boolean; errors?: ErrorFormat } = {}): Endpoint => ({
    method: 'GET',
    path,
    auth: options.auth ?? true,
    body: 'none',
    errors: options.errors ?? 'openai',
    handle,
  });
  const responses = { store, ttlMs: config.responsesTtlMs, log };
  const byId = {
    ...responses,
    fleet,
    pools,
    requestTimeoutMs: config.requestTimeoutMs,
    maxBodyBytes: config.maxBodyBytes,
    nodeApiKeys: config.nodeApiKeys,
  };
  const byIdRow = (method: 'GET' | 'DELETE' | 'POST', path: string, suffix: '' | '/cancel' | '/input_items'): Endpoint => ({
    method,
    path,
    auth: true,
    body: method === 'POST' ? 'json' : 'none',
    errors: 'openai',
    surface: 'responses_by_id',
    handle: responseByIdRoute(byId, method, suffix),
  });
  return [
    // OpenAI
    routed('/v1/chat/completions', chatCompletions),
    routed('/v1/embeddings', embeddings),
    routed('/v1/completions', completions),
    routed('/v1/responses', responsesSurface(responses)),
    byIdRow('GET', '/v1/responses/:id', ''),
    byIdRow('DELETE', '/v1/responses/:id', ''),
    byIdRow('POST', '/v1/responses/:id/cancel', '/cancel'),
    byIdRow('GET', '/v1/responses/:id/input_items', '/input_items'),
    routed('/v1/rerank', rerank),
    routed('/rerank', rerank),
    routed('/v2/rerank', rerankV2),
    routed('/v1/score', score),
    routed('/v1/audio/transcriptions', audioTranscriptions),
    routed('/v1/audio/translations', audioTranslations),
    routed('/v1/audio/speech', audioSpeech),
    routed('/v1/images/generations', imagesGenerations),
    // Anthropic
    routed('/v1/messages', messages, 'anthropic'),
    {
      method: 'POST',
      path: '/v1/messages/count_tokens',
      auth: true,
      body: 'json',
      errors: 'anthropic',
      surface: 'messages_count_tokens',
      handle: countTokensRoute(deps),
    },
    // Ollama
    routed('/api/chat', ollamaChat, 'ollama'),
    routed('/api/generate', ollamaGenerate, 'ollama'),
    routed('/api/embed', ollamaEmbed, 'ollama'),
    routed('/api/embeddings', ollamaEmbeddings, 'ollama'),
    admin('/api/tags', ollamaTagsRoute(fleet), { errors: 'ollama' }),
    admin('/api/ps', ollamaPsRoute(fleet), { errors: 'ollama' }),
    admin('/api/version', ollamaVersionRoute(), { errors: 'ollama' }),
    {
      method: 'POST',
      path: '/api/show',
      auth: true,
      body: 'json',
      errors: 'ollama',
      handle: ollamaShowRoute(fleet, config.maxBodyBytes, config.requestTimeoutMs),
    },
    // ai-lb
    admin('/v1/models', modelsRoute(fleet)),
    admin('/v1/models/:id', modelRoute(fleet)),
    admin('/v1/nodes', nodesRoute(store, fleet, services.clock)),
    admin('/v1/eligible_nodes', eligibleNodesRoute(config, fleet)),
    // Open for load balancers, orchestrators and scrapers.
    admin('/health', healthRoute(store, fleet, config.minHealthyNodes), { auth: false }),
    admin('/metrics', metricsRoute(metrics.registry), { auth: false }),
    // The page and its files hold no data: open, so a browser can load them and ask for a key.
    admin('/dashboard', dashboard.page, { auth: false }),
    admin('/dashboard/assets/:name', dashboard.page, { auth: false }),
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
