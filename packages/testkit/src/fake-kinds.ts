/**
 * What each kind of LLM server answers on its discovery endpoints, shaped like the real
 * servers (recorded samples in ../fixtures, model list substituted from the server's
 * options). The monitor's probes are tested against these.
 *
 * Besides the real kinds there are fault kinds for bad-input tests; each answers EVERY
 * discovery path the same broken way, so whichever endpoint a probe tries, it meets the
 * fault — except 'slow-kind-probes', which is a working OpenAI server on /v1/models only.
 */
import { readFileSync } from 'node:fs';

export type ServerFakeKind = 'openai' | 'ollama' | 'llamacpp' | 'vllm' | 'lmstudio' | 'sglang';
export type FaultFakeKind =
  /** 200 with an HTML page: some other web server on a scanned port. */
  | 'garbage'
  /** 200, content-type JSON, body cut off mid-document. */
  | 'invalid-json'
  /** 200, valid JSON of the wrong shape. */
  | 'bad-shape'
  /** 500 on every discovery path. */
  | 'http-500'
  /** Accepts the request and answers only after 10 minutes. */
  | 'hang'
  /** 200 with a 32 MiB body. */
  | 'huge'
  /** 200, an OpenAI model list of the configured models followed by 100,000 more (compact, ~2 MB). */
  | 'model-flood'
  /** /v1/models answers at once like 'openai'; every other discovery path only after 10 minutes. */
  | 'slow-kind-probes';
export type FakeKind = ServerFakeKind | FaultFakeKind;

export const FAULT_KINDS: readonly FaultFakeKind[] = [
  'garbage',
  'invalid-json',
  'bad-shape',
  'http-500',
  'hang',
  'huge',
  'model-flood',
  'slow-kind-probes',
];

export interface DiscoveryResponse {
  status: number;
  contentType: string;
  body: string;
  /** Wait this long before answering (the 'hang' kind). */
  delayMs?: number;
}

interface KindOptions {
  models: string[];
  slots: number;
}

type Route = (options: KindOptions) => DiscoveryResponse;

const FIXTURES = new URL('../fixtures/', import.meta.url);

/** A recorded sample from ../fixtures, parsed once. */
export function readFixture<T = unknown>(name: string): T {
  return JSON.parse(readFixtureText(name)) as T;
}

export function readFixtureText(name: string): string {
  return readFileSync(new URL(name, FIXTURES), 'utf8');
}

type Json = Record<string, unknown>;
const list = (name: string, key = 'data') => readFixture<Record<string, Json[]>>(name)[key];
const tpl = {
  openaiModels: list('openai-v1-models.json'),
  ollamaTags: list('ollama-api-tags.json', 'models'),
  ollamaPs: list('ollama-api-ps.json', 'models'),
  ollamaV1: list('ollama-v1-models.json'),
  ollamaVersion: readFixture<Json>('ollama-api-version.json'),
  llamacppV1: list('llamacpp-v1-models.json'),
  llamacppProps: readFixture<Json>('llamacpp-props.json'),
  llamacppSlots: readFixture<Json[]>('llamacpp-slots.json'),
  vllmV1: list('vllm-v1-models.json'),
  vllmMetrics: readFixtureText('vllm-metrics.txt'),
  lmstudioV0: list('lmstudio-api-v0-models.json'),
  lmstudioV1: list('lmstudio-v1-models.json'),
  sglangV1: list('sglang-v1-models.json'),
  sglangModelInfo: readFixture<Json>('sglang-get-model-info.json'),
  sglangServerInfo: readFixture<Json>('sglang-get-server-info.json'),
};

/** An OpenAI list (object: list) whose entries are the fixture's first entry with each model's id. */
function modelList(template: Json[], models: string[], extra: (id: string, i: number) => Json = () => ({})) {
  return { object: 'list', data: models.map((id, i) => ({ ...template[0], id, ...extra(id, i) })) };
}

const SERVER_ROUTES: Record<ServerFakeKind, Record<string, Route>> = {
  openai: {
    '/v1/models': ({ models }) => json(modelList(tpl.openaiModels, models)),
  },
  ollama: {
    '/': () => ({ status: 200, contentType: 'text/plain; charset=utf-8', body: 'Ollama is running' }),
    '/v1/models': ({ models }) => json(modelList(tpl.ollamaV1, models)),
    '/api/tags': ({ models }) => json({ models: models.map((name) => ({ ...tpl.ollamaTags[0], name, model: name })) }),
    // The first model plays the one loaded in memory.
    '/api/ps': ({ models }) => json({ models: models.slice(0, 1).map((name) => ({ ...tpl.ollamaPs[0], name, model: name })) }),
    '/api/version': () => json(tpl.ollamaVersion),
  },
  llamacpp: {
    '/v1/models': ({ models }) => json(modelList(tpl.llamacppV1, models)),
    '/props': ({ models, slots }) => json({ ...tpl.llamacppProps, total_slots: slots, model_path: models[0] ?? '' }),
    '/slots': ({ slots }) => json(Array.from({ length: slots }, (_, id) => ({ ...tpl.llamacppSlots[0], id }))),
    '/health': () => json({ status: 'ok' }),
  },
  vllm: {
    '/v1/models': ({ models }) => json(modelList(tpl.vllmV1, models, (id) => ({ root: id }))),
    '/metrics': ({ models }) => ({
      status: 200,
      contentType: 'text/plain; version=0.0.4; charset=utf-8',
      body: tpl.vllmMetrics.replaceAll('Qwen/Qwen3-0.6B', models[0] ?? ''),
    }),
    '/version': () => json({ version: '0.10.2' }),
  },
  lmstudio: {
    '/v1/models': ({ models }) => json(modelList(tpl.lmstudioV1, models)),
    // The first model plays the one loaded in memory; "embed" in a name makes it an embeddings model.
    '/api/v0/models': ({ models }) =>
      json(
        modelList(tpl.lmstudioV0, models, (id, i) => ({
          type: /embed/i.test(id) ? 'embeddings' : 'llm',
          state: i === 0 ? 'loaded' : 'not-loaded',
        })),
      ),
  },
  sglang: {
    '/v1/models': ({ models }) => json(modelList(tpl.sglangV1, models.slice(0, 1), (id) => ({ root: id }))),
    '/get_model_info': ({ models }) => json({ ...tpl.sglangModelInfo, model_path: models[0] ?? '' }),
    '/get_server_info': ({ models, slots }) => json({ ...tpl.sglangServerInfo, model_path: models[0] ?? '', max_running_requests: slots }),
  },
};

const HUGE_BODY_BYTES = 32 * 1024 * 1024;
let hugeBody: string | undefined;

export const MODEL_FLOOD_COUNT = 100_000;
const HANG_MS = 10 * 60_000;

const FAULTS: Record<FaultFakeKind, (options: KindOptions, path: string) => DiscoveryResponse> = {
  garbage: () => ({ status: 200, contentType: 'text/html', body: '<html><body><h1>It works!</h1></body></html>' }),
  'invalid-json': () => ({ status: 200, contentType: 'application/json', body: '{"object":"list","data":[{"id":"trunc' }),
  'bad-shape': () => json({ object: 'list', data: 'not-a-list', models: 42 }),
  'http-500': () => json({ error: { message: 'internal error', type: 'server_error' } }, 500),
  hang: (options) => ({ ...json(modelList(tpl.openaiModels, options.models)), delayMs: HANG_MS }),
  huge: () => {
    hugeBody ??= `{"object":"list","data":[{"id":"${'x'.repeat(HUGE_BODY_BYTES)}"}]}`;
    return { status: 200, contentType: 'application/json', body: hugeBody };
  },
  'model-flood': ({ models }) => {
    const flood = Array.from({ length: MODEL_FLOOD_COUNT }, (_, i) => `flood-${i}`);
    return json({ object: 'list', data: [...models, ...flood].map((id) => ({ id })) });
  },
  'slow-kind-probes': (options, path) => {
    const models = SERVER_ROUTES.openai['/v1/models'](options);
    return path === '/v1/models' ? models : { ...models, delayMs: HANG_MS };
  },
};

/** The GET paths a real kind answers (a POST to one of them is refused as a wrong method). */
export function discoveryPaths(kind: FakeKind): readonly string[] {
  return Object.keys(SERVER_ROUTES[kind as ServerFakeKind] ?? {});
}

export function discoveryResponse(kind: FakeKind, path: string, options: KindOptions): DiscoveryResponse | undefined {
  if (kind in FAULTS) return FAULTS[kind as FaultFakeKind](options, path);
  return SERVER_ROUTES[kind as ServerFakeKind]?.[path]?.(options);
}

function json(value: unknown, status = 200): DiscoveryResponse {
  return { status, contentType: 'application/json', body: JSON.stringify(value) };
}
