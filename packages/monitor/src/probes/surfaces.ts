/**
 * Which API surfaces a node serves, learned once when the monitor first finds it and again
 * when its kind, version or model list changes (or after REPROBE_AFTER_MS, for servers that
 * tell no version): from the kind, plus a route check per surface that cannot start a
 * generation.
 *
 * The route check sends what a real client never would: POST `{}` (GET for the by-id
 * Responses route, with an id that cannot exist). A server that has the route rejects the
 * body (400/422, a handler's own 404 for the missing model or id); one that lacks it
 * answers the way it answers every unknown route. Servers disagree on that answer: FastAPI
 * 404/405 {"detail"}, llama.cpp a JSON 404, Ollama's gin a text 404/405, LM Studio 200 with
 * {"error":"Unexpected endpoint or method. (POST /x)"}. So the node is first asked for a
 * route no server has, and a surface counts as absent when its answer looks the same (path
 * and digits masked), or is a 405/501. When that baseline is itself not a refusal (an API
 * key wall, a model still loading), or a route check fails in transit, the kind's usual
 * surfaces stand in and nothing is cached, so the next scan asks again.
 *
 * Ollama's own API is decided by kind alone: llama.cpp also answers /api/chat, in OpenAI's
 * format, which must not make it an Ollama node.
 */
import { API_SURFACES, SURFACE_ROUTES, systemClock, type ApiSurface, type Clock, type NodeId, type ServerKind } from '@ai-lb/shared';
import { ProbeError } from './probe-error.ts';
import { isRecord, type ProbeContext } from './probe-context.ts';
import type { ProbeClient, ProbeResponse } from './probe-client.ts';

/** Servers without a version endpoint (LM Studio, generic OpenAI) are asked again this often. */
export const REPROBE_AFTER_MS = 30 * 60_000;

const BASELINE_PATH = '/v1/ai-lb-probe-no-such-route';

/** What each kind's current releases serve: assumed where a route check cannot tell. */
export const KIND_DEFAULT_SURFACES: Record<ServerKind, readonly ApiSurface[]> = {
  openai: ['chat_completions', 'completions', 'embeddings'],
  vllm: [
    'chat_completions',
    'completions',
    'embeddings',
    'responses',
    'responses_by_id',
    'messages',
    'messages_count_tokens',
    'rerank',
    'rerank_v2',
    'score',
    'audio_transcriptions',
    'audio_translations',
  ],
  llamacpp: ['chat_completions', 'completions', 'embeddings', 'responses', 'messages', 'messages_count_tokens', 'rerank'],
  ollama: ['chat_completions', 'completions', 'embeddings', 'responses', 'messages', 'ollama'],
  lmstudio: ['chat_completions', 'completions', 'embeddings', 'responses', 'messages'],
  sglang: ['chat_completions', 'completions', 'embeddings', 'responses', 'responses_by_id', 'rerank', 'score'],
};

/** Where each kind tells its version; the answer is part of the cache key. */
const VERSION_SOURCES: Partial<Record<ServerKind, { path: string; field: string }>> = {
  ollama: { path: '/api/version', field: 'version' },
  vllm: { path: '/version', field: 'version' },
  llamacpp: { path: '/props', field: 'build_info' },
  sglang: { path: '/get_server_info', field: 'version' },
};

const ROUTE_CHECKED: readonly ApiSurface[] = API_SURFACES.filter((surface) => surface !== 'ollama');

export type RouteVerdict = 'present' | 'absent' | 'unknown';

interface Answer {
  status: number;
  body: string;
}

/** An answer's look with the probed path and every digit masked: what stays the same across unknown routes. */
export function answerSignature(answer: Answer, path: string): string {
  return `${answer.status} ${answer.body.slice(0, 2000).split(path).join('<path>').replace(/\d+/g, '#').trim()}`;
}

/** Whether the unknown-route baseline is a refusal (so that route answers can be compared with it). */
export function isRefusal(baseline: Answer): boolean {
  return baseline.status === 404 || baseline.status === 405 || (baseline.status === 200 && /unexpected endpoint/i.test(baseline.body));
}

/** Pure: one route's answer against the node's answer for a route that does not exist. */
export function routeVerdict(answer: Answer | null, path: string, baseline: Answer): RouteVerdict {
  if (answer === null) return 'unknown';
  if (answer.status === 405 || answer.status === 501) return 'absent';
  if (answerSignature(answer, path) === answerSignature(baseline, BASELINE_PATH)) return 'absent';
  if (answer.status === 401 || answer.status === 403) return 'unknown';
  return 'present';
}

interface CacheEntry {
  key: string;
  surfaces: ApiSurface[];
  learnedAtMs: number;
}

/** One cache per probe client: it lives exactly as long as the monitor that probes. */
const caches = new WeakMap<ProbeClient, Map<NodeId, CacheEntry>>();

function cacheOf(client: ProbeClient): Map<NodeId, CacheEntry> {
  let cache = caches.get(client);
  if (!cache) {
    cache = new Map();
    caches.set(client, cache);
  }
  return cache;
}

/** A node that stopped answering is "first found" again when it comes back. */
export function forgetSurfaces(client: ProbeClient, node: NodeId): void {
  caches.get(client)?.delete(node);
}

/** The node's surfaces: from the cache while kind, version and models are unchanged, else probed. */
export async function learnSurfaces(
  context: ProbeContext,
  facts: { kind: ServerKind; models: readonly string[] },
  clock: Clock = systemClock,
): Promise<ApiSurface[]> {
  const { client, target } = context;
  const version = await readVersion(context, facts.kind);
  const key = JSON.stringify([facts.kind, version, [...facts.models].sort()]);
  const cache = cacheOf(client);
  const cached = cache.get(target.node);
  if (cached && cached.key === key && clock() - cached.learnedAtMs < REPROBE_AFTER_MS) return cached.surfaces;
  const { surfaces, conclusive } = await probeSurfaces(context, facts.kind);
  if (conclusive) cache.set(target.node, { key, surfaces, learnedAtMs: clock() });
  else cache.delete(target.node);
  return surfaces;
}

/** Asks every route once. `conclusive` is false when some answer could not tell (nothing to cache). */
export async function probeSurfaces(context: ProbeContext, kind: ServerKind): Promise<{ surfaces: ApiSurface[]; conclusive: boolean }> {
  const defaults = new Set(KIND_DEFAULT_SURFACES[kind]);
  const fromKind = (surface: ApiSurface) => defaults.has(surface);
  const [postBaseline, getBaseline] = await Promise.all([ask(context, 'POST', BASELINE_PATH), ask(context, 'GET', BASELINE_PATH)]);
  if (postBaseline === null || getBaseline === null || !isRefusal(postBaseline) || !isRefusal(getBaseline)) {
    return { surfaces: API_SURFACES.filter(fromKind), conclusive: false };
  }
  const verdicts = await Promise.all(
    ROUTE_CHECKED.map(async (surface) => {
      const { method, path } = SURFACE_ROUTES[surface];
      const answer = await ask(context, method, path);
      return [surface, routeVerdict(answer, path, method === 'GET' ? getBaseline : postBaseline)] as const;
    }),
  );
  const verdictOf = new Map<ApiSurface, RouteVerdict>(verdicts);
  const surfaces = API_SURFACES.filter((surface) => {
    if (surface === 'ollama') return kind === 'ollama';
    const verdict = verdictOf.get(surface);
    return verdict === 'present' || (verdict === 'unknown' && fromKind(surface));
  });
  return { surfaces, conclusive: verdicts.every(([, verdict]) => verdict !== 'unknown') };
}

/** One route check; null when the answer never came (timeout, reset, oversized), recorded as a warning. */
async function ask(context: ProbeContext, method: 'GET' | 'POST', path: string): Promise<Answer | null> {
  try {
    const response: ProbeResponse =
      method === 'GET'
        ? await context.client.get(context.target, path, context.deadline)
        : await context.client.post(context.target, path, {}, context.deadline);
    return { status: response.status, body: response.body };
  } catch (error) {
    if (!(error instanceof ProbeError)) throw error;
    context.warn(error);
    return null;
  }
}

async function readVersion(context: ProbeContext, kind: ServerKind): Promise<string | null> {
  const source = VERSION_SOURCES[kind];
  if (!source) return null;
  const answer = await ask(context, 'GET', source.path);
  if (answer?.status !== 200) return null;
  try {
    const doc = JSON.parse(answer.body) as unknown;
    const version = isRecord(doc) ? doc[source.field] : undefined;
    return typeof version === 'string' || typeof version === 'number' ? String(version) : null;
  } catch {
    return null;
  }
}
