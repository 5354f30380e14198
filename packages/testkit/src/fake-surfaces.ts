/**
 * Which API routes each fake kind serves, and how it refuses the rest: the one table of the
 * fakes' surfaces, modelled on the real servers' route tables (vllm entrypoints/openai +
 * anthropic routers, llama.cpp tools/server/server.cpp, ollama server/routes.go, LM Studio's
 * documented endpoints, sglang srt/entrypoints/http_server.py). The monitor's surface probe
 * is tested against these answers, so refusals copy each server's own: FastAPI's 404/405
 * {"detail"}, llama.cpp's JSON 404, gin's plain-text 404/405, LM Studio's 200 with
 * {"error":"Unexpected endpoint or method. (…)"}.
 *
 * | endpoint                         | openai | vllm | llamacpp | ollama | lmstudio | sglang |
 * |----------------------------------|--------|------|----------|--------|----------|--------|
 * | POST /v1/chat/completions        | ✓      | ✓    | ✓        | ✓      | ✓        | ✓      |
 * | POST /v1/completions             | ✓      | ✓    | ✓        | ✓      | ✓        | ✓      |
 * | POST /v1/embeddings              | ✓      | ✓    | ✓        | ✓      | ✓        | ✓      |
 * | POST /v1/responses               | ✓      | ✓    | ✓        | ✓ (stateless) | ✓ | ✓      |
 * | GET /v1/responses/{id}, …/cancel | ✓      | ✓    |          |        |          | ✓      |
 * | DELETE /v1/responses/{id}        | ✓      |      |          |        |          |        |
 * | POST /v1/messages                |        | ✓    | ✓        | ✓      | ✓        |        |
 * | POST /v1/messages/count_tokens   |        | ✓    | ✓        |        |          |        |
 * | POST /api/chat, generate, embed, embeddings, show |  |  |    | ✓      |          |        |
 * | POST /v1/rerank                  |        | ✓    | ✓        |        |          | ✓      |
 * | POST /rerank                     |        | ✓    | ✓        |        |          |        |
 * | POST /v2/rerank                  |        | ✓    |          |        |          |        |
 * | POST /v1/score                   |        | ✓    |          |        |          | ✓      |
 * | POST /v1/audio/transcriptions    | ✓      | ✓    |          | ✓      |          |        |
 * | POST /v1/audio/translations      | ✓      | ✓    |          |        |          |        |
 * | POST /v1/audio/speech            | ✓      |      |          |        |          |        |
 * | POST /v1/images/generations      | ✓      |      |          | ✓      |          |        |
 *
 * `openai` plays a server with the whole OpenAI API (OpenAI itself, LocalAI, a LiteLLM proxy).
 * llama.cpp's own /api/chat is an alias of its OpenAI chat route, not Ollama's API: left out.
 */
import type { ApiSurface } from '@ai-lb/shared';
import type { DiscoveryResponse, FakeKind, ServerFakeKind } from './fake-kinds.ts';

export type EndpointKey =
  | 'POST /v1/chat/completions'
  | 'POST /v1/completions'
  | 'POST /v1/embeddings'
  | 'POST /v1/responses'
  | 'GET /v1/responses/{id}'
  | 'DELETE /v1/responses/{id}'
  | 'POST /v1/responses/{id}/cancel'
  | 'POST /v1/messages'
  | 'POST /v1/messages/count_tokens'
  | 'POST /api/chat'
  | 'POST /api/generate'
  | 'POST /api/embed'
  | 'POST /api/embeddings'
  | 'POST /api/show'
  | 'POST /v1/rerank'
  | 'POST /rerank'
  | 'POST /v2/rerank'
  | 'POST /v1/score'
  | 'POST /v1/audio/transcriptions'
  | 'POST /v1/audio/translations'
  | 'POST /v1/audio/speech'
  | 'POST /v1/images/generations';

export interface FakeEndpoint {
  key: EndpointKey;
  surface: ApiSurface;
  /** The path's {id}, for the by-id Responses calls. */
  id?: string;
}

const SURFACE_OF: Record<EndpointKey, ApiSurface> = {
  'POST /v1/chat/completions': 'chat_completions',
  'POST /v1/completions': 'completions',
  'POST /v1/embeddings': 'embeddings',
  'POST /v1/responses': 'responses',
  'GET /v1/responses/{id}': 'responses_by_id',
  'DELETE /v1/responses/{id}': 'responses_by_id',
  'POST /v1/responses/{id}/cancel': 'responses_by_id',
  'POST /v1/messages': 'messages',
  'POST /v1/messages/count_tokens': 'messages_count_tokens',
  'POST /api/chat': 'ollama',
  'POST /api/generate': 'ollama',
  'POST /api/embed': 'ollama',
  'POST /api/embeddings': 'ollama',
  'POST /api/show': 'ollama',
  'POST /v1/rerank': 'rerank',
  'POST /rerank': 'rerank',
  'POST /v2/rerank': 'rerank_v2',
  'POST /v1/score': 'score',
  'POST /v1/audio/transcriptions': 'audio_transcriptions',
  'POST /v1/audio/translations': 'audio_translations',
  'POST /v1/audio/speech': 'audio_speech',
  'POST /v1/images/generations': 'images_generations',
};

const OPENAI_CORE: EndpointKey[] = ['POST /v1/chat/completions', 'POST /v1/completions', 'POST /v1/embeddings', 'POST /v1/responses'];
const RESPONSES_STORE: EndpointKey[] = ['GET /v1/responses/{id}', 'POST /v1/responses/{id}/cancel'];
const MESSAGES: EndpointKey[] = ['POST /v1/messages'];
const COUNT_TOKENS: EndpointKey[] = ['POST /v1/messages/count_tokens'];

export const KIND_ENDPOINTS: Record<ServerFakeKind, readonly EndpointKey[]> = {
  openai: [
    ...OPENAI_CORE,
    ...RESPONSES_STORE,
    'DELETE /v1/responses/{id}',
    'POST /v1/audio/transcriptions',
    'POST /v1/audio/translations',
    'POST /v1/audio/speech',
    'POST /v1/images/generations',
  ],
  vllm: [
    ...OPENAI_CORE,
    ...RESPONSES_STORE,
    ...MESSAGES,
    ...COUNT_TOKENS,
    'POST /v1/rerank',
    'POST /rerank',
    'POST /v2/rerank',
    'POST /v1/score',
    'POST /v1/audio/transcriptions',
    'POST /v1/audio/translations',
  ],
  llamacpp: [...OPENAI_CORE, ...MESSAGES, ...COUNT_TOKENS, 'POST /v1/rerank', 'POST /rerank'],
  ollama: [
    ...OPENAI_CORE,
    ...MESSAGES,
    'POST /api/chat',
    'POST /api/generate',
    'POST /api/embed',
    'POST /api/embeddings',
    'POST /api/show',
    'POST /v1/audio/transcriptions',
    'POST /v1/images/generations',
  ],
  lmstudio: [...OPENAI_CORE, ...MESSAGES],
  sglang: [...OPENAI_CORE, ...RESPONSES_STORE, 'POST /v1/rerank', 'POST /v1/score'],
};

/** The surfaces a fake kind serves, from its endpoints: what the monitor must learn. */
export function fakeKindSurfaces(kind: ServerFakeKind): ApiSurface[] {
  const surfaces = new Set(KIND_ENDPOINTS[kind].map((key) => SURFACE_OF[key]));
  return [...surfaces];
}

const BY_ID = /^\/v1\/responses\/([^/]+)(\/cancel)?$/;

/** The endpoint a request hits on this kind, or null when the kind does not serve it. */
export function findEndpoint(kind: FakeKind, method: string | undefined, path: string): FakeEndpoint | null {
  const endpoints = KIND_ENDPOINTS[kind as ServerFakeKind];
  if (!endpoints) return null;
  const byId = BY_ID.exec(path);
  const key = (byId ? `${method} /v1/responses/{id}${byId[2] ?? ''}` : `${method} ${path}`) as EndpointKey;
  if (!endpoints.includes(key)) return null;
  return { key, surface: SURFACE_OF[key], ...(byId ? { id: decodeURIComponent(byId[1]!) } : {}) };
}

/** Whether the kind serves this path with another method (405 where the server says so). */
function pathServedOtherwise(kind: ServerFakeKind, path: string, discoveryPaths: readonly string[]): boolean {
  const shape = BY_ID.test(path) ? path.replace(BY_ID, (_m, _id, cancel) => `/v1/responses/{id}${cancel ?? ''}`) : path;
  return KIND_ENDPOINTS[kind].some((key) => key.split(' ')[1] === shape) || discoveryPaths.includes(path);
}

/** How the kind answers a route it does not serve. */
export function refusal(kind: FakeKind, method: string, path: string, discoveryPaths: readonly string[]): DiscoveryResponse {
  const otherMethod = kind in KIND_ENDPOINTS && pathServedOtherwise(kind as ServerFakeKind, path, discoveryPaths);
  const json = (status: number, value: unknown): DiscoveryResponse => ({
    status,
    contentType: 'application/json',
    body: JSON.stringify(value),
  });
  switch (kind) {
    case 'vllm':
    case 'sglang':
      return otherMethod ? json(405, { detail: 'Method Not Allowed' }) : json(404, { detail: 'Not Found' });
    case 'llamacpp':
      return json(404, { error: { message: 'File Not Found', type: 'not_found_error', code: 404 } });
    case 'ollama':
      return otherMethod
        ? { status: 405, contentType: 'text/plain', body: '405 method not allowed' }
        : { status: 404, contentType: 'text/plain', body: '404 page not found' };
    case 'lmstudio':
      return {
        status: 200,
        contentType: 'application/json; charset=utf-8',
        body: JSON.stringify({ error: `Unexpected endpoint or method. (${method} ${path})` }),
      };
    default:
      return json(404, { error: { message: `Invalid URL (${method} ${path})`, type: 'invalid_request_error', param: null, code: null } });
  }
}
