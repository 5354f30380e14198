/**
 * The API surfaces a node can serve, as the monitor records them in NodeState.surfaces and
 * the gateway reads them to pick nodes for a request. One id per client-facing API family;
 * `path` is the route the monitor probes for it (and the one a request is sent to).
 */
import type { NodeState, ServerKind } from './types.ts';

export const API_SURFACES = [
  'chat_completions',
  'completions',
  'embeddings',
  'responses',
  /** GET/DELETE /v1/responses/{id} and POST …/cancel: only where the server keeps responses. */
  'responses_by_id',
  'messages',
  'messages_count_tokens',
  /** Ollama's own /api/chat, /api/generate, /api/embed(dings), /api/show, /api/tags, /api/ps. */
  'ollama',
  /** /v1/rerank (and /rerank): the Jina/Cohere v1 shape. */
  'rerank',
  /** /v2/rerank: Cohere's v2 shape (vLLM). */
  'rerank_v2',
  'score',
  'audio_transcriptions',
  'audio_translations',
  'audio_speech',
  'images_generations',
] as const;

export type ApiSurface = (typeof API_SURFACES)[number];

export interface SurfaceRoute {
  method: 'GET' | 'POST';
  path: string;
}

/** The route that tells whether a node serves the surface (ids in paths are placeholders). */
export const SURFACE_ROUTES: Record<ApiSurface, SurfaceRoute> = {
  chat_completions: { method: 'POST', path: '/v1/chat/completions' },
  completions: { method: 'POST', path: '/v1/completions' },
  embeddings: { method: 'POST', path: '/v1/embeddings' },
  responses: { method: 'POST', path: '/v1/responses' },
  responses_by_id: { method: 'GET', path: '/v1/responses/resp_ai-lb-probe' },
  messages: { method: 'POST', path: '/v1/messages' },
  messages_count_tokens: { method: 'POST', path: '/v1/messages/count_tokens' },
  ollama: { method: 'POST', path: '/api/chat' },
  rerank: { method: 'POST', path: '/v1/rerank' },
  rerank_v2: { method: 'POST', path: '/v2/rerank' },
  score: { method: 'POST', path: '/v1/score' },
  audio_transcriptions: { method: 'POST', path: '/v1/audio/transcriptions' },
  audio_translations: { method: 'POST', path: '/v1/audio/translations' },
  audio_speech: { method: 'POST', path: '/v1/audio/speech' },
  images_generations: { method: 'POST', path: '/v1/images/generations' },
};

/**
 * What a record written before the monitor learned surfaces is taken to serve: what ai-lb
 * routed then (chat and embeddings), plus the Ollama API on Ollama nodes.
 */
export function surfacesOf(node: Pick<NodeState, 'kind' | 'surfaces'>): readonly ApiSurface[] {
  if (Array.isArray(node.surfaces)) return node.surfaces;
  return legacySurfaces(node.kind);
}

function legacySurfaces(kind: ServerKind): readonly ApiSurface[] {
  return kind === 'ollama' ? ['chat_completions', 'embeddings', 'ollama'] : ['chat_completions', 'embeddings'];
}

export function isApiSurface(value: unknown): value is ApiSurface {
  return typeof value === 'string' && (API_SURFACES as readonly string[]).includes(value);
}
