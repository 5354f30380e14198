import { GatewayError } from '@ai-lb/shared';
import { OLLAMA_NDJSON } from '../forwarding/stream-shapes.ts';
import type { Exchange } from '../http/exchange.ts';
import type { FleetCache } from '../routing/fleet-cache.ts';
import { aggregatePs, aggregateTags, syntheticEntry, syntheticShow } from '../surfaces/ollama/aggregate.ts';
import {
  ollamaChatToChatRequest,
  ollamaEmbeddingsToEmbeddingsRequest,
  ollamaEmbedToEmbeddingsRequest,
  ollamaGenerateToUpstream,
  type TranslatedOllamaRequest,
} from '../surfaces/ollama/request.ts';
import {
  chatCompletionToOllamaChat,
  completionToOllamaGenerate,
  embeddingsToOllamaEmbed,
  embeddingsToOllamaEmbeddings,
} from '../surfaces/ollama/response.ts';
import { OllamaStreamTranslator } from '../surfaces/ollama/stream.ts';
import {
  modelAndStream,
  require,
  translatedBytes,
  type InferenceSurface,
  type RequestTranslation,
  type SurfaceTranslation,
} from './inference-route.ts';

/**
 * Ollama's own API (Open WebUI's Ollama mode, the ollama clients). Ollama nodes get the
 * request as it is, NDJSON streams relayed line by line (Ollama streams unless told not to);
 * every other node that serves chat completions (or embeddings) gets it translated, so the
 * whole fleet answers in Ollama's shapes.
 */
type Translate = (body: unknown, options: { acceptsTopK: boolean }) => TranslatedOllamaRequest;
type Answer = (upstream: unknown, model: string, timing: { startedAtMs: number; clock: () => number }) => unknown;

function ollamaTranslation(
  via: 'chat_completions' | 'embeddings',
  translate: Translate,
  answer: Answer,
  mode?: 'chat' | 'generate',
): SurfaceTranslation {
  return {
    via,
    begin(body, model) {
      const { path, body: translated } = translate({ ...body, model }, { acceptsTopK: true });
      const bytes = translatedBytes(translated);
      const timing = { startedAtMs: Date.now(), clock: Date.now };
      const translation: RequestTranslation = {
        request: (node) => ({ path, body: bytes.forKind(node.kind) }),
        answer: (upstream) => answer(upstream, model, timing),
        stream: () => new OllamaStreamTranslator({ model, mode: mode ?? 'chat', timing }),
        streamContentType: 'application/x-ndjson',
      };
      return translation;
    },
  };
}

function ollamaSurface(
  name: string,
  path: string,
  validate: InferenceSurface['validate'],
  translation: SurfaceTranslation,
): InferenceSurface {
  return { name, needs: 'ollama', upstreamPath: path, fallbackToLmModel: false, streams: OLLAMA_NDJSON, validate, translation };
}

const modelRequired = (body: Record<string, unknown>) =>
  require(typeof body.model === 'string' && body.model !== '', 'model', "'model' is required");

export const ollamaChat = ollamaSurface(
  'ollama_chat',
  '/api/chat',
  (body) => {
    modelRequired(body);
    require(body.messages === undefined || Array.isArray(body.messages), 'messages', "'messages' must be an array");
    return modelAndStream(body, true);
  },
  ollamaTranslation('chat_completions', ollamaChatToChatRequest, chatCompletionToOllamaChat, 'chat'),
);

export const ollamaGenerate = ollamaSurface(
  'ollama_generate',
  '/api/generate',
  (body) => {
    modelRequired(body);
    require(body.prompt === undefined || typeof body.prompt === 'string', 'prompt', "'prompt' must be a string");
    return modelAndStream(body, true);
  },
  ollamaTranslation('chat_completions', ollamaGenerateToUpstream, completionToOllamaGenerate, 'generate'),
);

export const ollamaEmbed = ollamaSurface(
  'ollama_embed',
  '/api/embed',
  (body) => {
    modelRequired(body);
    return { stream: false };
  },
  ollamaTranslation('embeddings', (body) => ollamaEmbedToEmbeddingsRequest(body), embeddingsToOllamaEmbed),
);

export const ollamaEmbeddings = ollamaSurface(
  'ollama_embeddings',
  '/api/embeddings',
  (body) => {
    modelRequired(body);
    return { stream: false };
  },
  ollamaTranslation(
    'embeddings',
    (body) => ollamaEmbeddingsToEmbeddingsRequest(body),
    (upstream) => embeddingsToOllamaEmbeddings(upstream),
  ),
);

/** What Ollama's listing endpoints read of the fleet. */
type ListingFleet = Pick<FleetCache, 'nodes' | 'firstSeenMs'>;

/** GET /api/tags: every model the fleet serves, in Ollama's shape, de-duplicated. */
export function ollamaTagsRoute(fleet: ListingFleet) {
  return function handleTags(exchange: Exchange): void {
    const ids = new Set<string>();
    for (const node of fleet.nodes()) if (node.healthy) for (const id of node.models) ids.add(id);
    const sources = [...ids].map((id) => ({ modelIds: [id], seenAtMs: fleet.firstSeenMs(id) }));
    exchange.sendJson(200, aggregateTags(sources));
  };
}

/** GET /api/ps: the models the fleet's nodes report loaded. */
export function ollamaPsRoute(fleet: ListingFleet) {
  return function handlePs(exchange: Exchange): void {
    const lists = fleet
      .nodes()
      .filter((node) => node.healthy)
      .map((node) => node.loadedModels.map((id) => ({ ...syntheticEntry(id, fleet.firstSeenMs(id)), size_vram: 0 })));
    exchange.sendJson(200, aggregatePs(lists));
  };
}

/**
 * GET /api/version. Clients gate features on it; the nodes' versions are not recorded, so
 * this is a version whose API ai-lb serves in full (documented in the README).
 */
export const OLLAMA_API_VERSION = '0.12.0';
export function ollamaVersionRoute() {
  return function handleVersion(exchange: Exchange): void {
    exchange.sendJson(200, { version: OLLAMA_API_VERSION });
  };
}

/** POST /api/show: what a client needs to list a model; a minimal answer made from its id. */
export function ollamaShowRoute(fleet: ListingFleet & Pick<FleetCache, 'knownModel'>, maxBodyBytes: number, timeoutMs: number) {
  return async function handleShow(exchange: Exchange): Promise<void> {
    const body = await exchange.readJson(maxBodyBytes, timeoutMs);
    const name = body.value.model ?? body.value.name;
    require(typeof name === 'string' && name !== '', 'model', "'model' is required");
    const model = fleet.knownModel(name as string);
    if (model === undefined)
      throw new GatewayError('model_not_found', `model '${String(name).slice(0, 200)}' not found`, { param: 'model' });
    exchange.model = model;
    exchange.sendJson(200, syntheticShow(model, fleet.firstSeenMs(model)));
  };
}
