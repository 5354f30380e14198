/**
 * What a fake engine answers on the endpoints the monitor reads, per server kind: the
 * static discovery answers come from fake-kinds.ts (recorded shapes); the load endpoints
 * (vLLM/SGLang/llama.cpp /metrics, llama.cpp /slots, Ollama /api/ps, LM Studio's model
 * lists) are rendered from the engine's live state in the same shapes as the fixtures.
 *
 * A load fault (set through the control endpoint) makes the load endpoints misbehave the
 * way a broken or lying server would; discovery answers stay correct.
 */
import { discoveryResponse, readFixture, type DiscoveryResponse, type ServerFakeKind } from './fake-kinds.ts';
import type { EngineSim } from './fake-engine-sim.ts';

export type EngineKind = Exclude<ServerFakeKind, 'openai'>;
export const LOAD_FAULTS = ['hang', 'garbage', 'negative', 'nan', 'absurd'] as const;
export type LoadFault = (typeof LOAD_FAULTS)[number];

export interface EngineView {
  kind: EngineKind;
  sim: EngineSim;
  slots: number;
  /** llama.cpp: serve /metrics (started with --metrics) or answer 501 and leave /slots. */
  llamacppMetrics: boolean;
  fault: LoadFault | null;
}

const LOAD_PATHS = new Set(['/metrics', '/slots', '/api/ps', '/api/v0/models', '/api/v1/models']);
const HANG_MS = 10 * 60_000;

type Json = Record<string, unknown>;
const ollamaPs = readFixture<{ models: Json[] }>('ollama-api-ps.json').models[0];
const lmstudioV1 = readFixture<{ models: Json[] }>('lmstudio-api-v1-models.json').models[0];
const llamacppSlot = readFixture<Json[]>('llamacpp-slots.json')[0];
const llamacppNoMetrics = readFixture<Json>('llamacpp-metrics-disabled.json');

export function engineResponse(view: EngineView, path: string): DiscoveryResponse | undefined {
  if (view.fault !== null && LOAD_PATHS.has(path)) return faultResponse(view.fault, path);
  const { sim } = view;
  const models = sim.options.models;
  switch (`${view.kind} ${path}`) {
    case 'vllm /metrics':
      return prometheus(vllmMetrics(sim, sim.runningCount, sim.waitingCount));
    case 'sglang /metrics':
      return prometheus(sglangMetrics(sim, sim.runningCount, sim.waitingCount));
    case 'llamacpp /metrics':
      if (!view.llamacppMetrics) return json(llamacppNoMetrics, 501);
      return prometheus(llamacppMetrics(sim.runningCount, sim.waitingCount));
    case 'llamacpp /slots':
      return json(Array.from({ length: view.slots }, (_, id) => ({ ...llamacppSlot, id, is_processing: id < sim.runningCount })));
    case 'ollama /api/ps':
      return json({ models: sim.loadedModels.map((name) => ({ ...ollamaPs, name, model: name, expires_at: inFiveMinutes() })) });
    case 'lmstudio /api/v0/models':
      return json({
        object: 'list',
        data: models.map((id) => ({ id, object: 'model', type: 'llm', state: sim.loadedModels.includes(id) ? 'loaded' : 'not-loaded' })),
      });
    case 'lmstudio /api/v1/models':
      return json({
        models: models.map((key) => ({
          ...lmstudioV1,
          key,
          loaded_instances: sim.loadedModels.includes(key) ? [{ id: key, config: { context_length: 4096 } }] : [],
        })),
      });
    default:
      return discoveryResponse(view.kind, path, { models, slots: view.slots });
  }
}

function vllmMetrics(sim: EngineSim, running: number, waiting: number): string {
  const labels = `engine="0",model_name="${sim.options.models[0] ?? ''}"`;
  return [
    gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', labels, running),
    gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', labels, waiting),
    gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', labels, sim.kvCacheUsage),
    counter(
      'vllm:prefix_cache_queries_total',
      'Prefix cache queries, in terms of number of queried tokens.',
      labels,
      sim.stats.promptTokens,
    ),
    counter('vllm:prefix_cache_hits_total', 'Prefix cache hits, in terms of number of cached tokens.', labels, sim.stats.cachedTokens),
  ].join('');
}

function sglangMetrics(sim: EngineSim, running: number, waiting: number): string {
  const labels = `model_name="${sim.options.models[0] ?? ''}"`;
  return [
    gauge('sglang:num_running_reqs', 'The number of running requests', labels, running),
    gauge('sglang:num_queue_reqs', 'The number of requests in the waiting queue', labels, waiting),
    gauge('sglang:token_usage', 'The token usage', labels, sim.kvCacheUsage),
  ].join('');
}

function llamacppMetrics(running: number, waiting: number): string {
  return [
    gauge('llamacpp:requests_processing', 'Number of requests processing.', '', running),
    gauge('llamacpp:requests_deferred', 'Number of requests deferred.', '', waiting),
  ].join('');
}

function faultResponse(fault: LoadFault, path: string): DiscoveryResponse {
  const lie = fault === 'negative' ? -5 : fault === 'nan' ? 'NaN' : 1e9;
  switch (fault) {
    case 'hang':
      return { ...json({}), delayMs: HANG_MS };
    case 'garbage':
      return { status: 200, contentType: 'text/html', body: '<html><body><h1>It works!</h1></body></html>' };
    default:
      if (path === '/metrics') {
        const labels = 'engine="0",model_name="m"';
        // Every kind's queue gauges, all lying: whichever kind reads this page meets the lie.
        const names = ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'sglang:num_running_reqs', 'sglang:num_queue_reqs'];
        const labelled = names.map((name) => `${name}{${labels}} ${lie}\n`).join('');
        return prometheus(`${labelled}llamacpp:requests_processing ${lie}\nllamacpp:requests_deferred ${lie}\n`);
      }
      // A model list no server has: more loaded models than any real one could hold.
      return json({ models: Array.from({ length: 2000 }, (_, i) => ({ name: `m${i}`, model: `m${i}` })) });
  }
}

function gauge(name: string, help: string, labels: string, value: number): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name}${labels ? `{${labels}}` : ''} ${value}\n`;
}

function counter(name: string, help: string, labels: string, value: number): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} counter\n${name}${labels ? `{${labels}}` : ''} ${value}\n`;
}

function prometheus(body: string): DiscoveryResponse {
  return { status: 200, contentType: 'text/plain; version=0.0.4; charset=utf-8', body };
}

function json(value: unknown, status = 200): DiscoveryResponse {
  return { status, contentType: 'application/json', body: JSON.stringify(value) };
}

function inFiveMinutes(): string {
  return new Date(Date.now() + 5 * 60_000).toISOString();
}
