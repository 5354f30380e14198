/**
 * vLLM `GET /metrics`: the scheduler's queue (`vllm:num_requests_running`,
 * `vllm:num_requests_waiting`) summed over engines and models, and the KV-cache fill
 * (`vllm:kv_cache_usage_perc`, before V1 `vllm:gpu_cache_usage_perc`) averaged over
 * engines. vLLM serves one model, always loaded: loadedModels stays null.
 */
import { badShape, okBody } from '../probes/probe-context.ts';
import type { LoadPoller } from './load-poller.ts';
import { meanOf, parsePrometheusText, sumOf } from './prometheus-text.ts';

export const VLLM_LOAD_PATH = '/metrics';

export function parseVllmLoad(text: string) {
  const samples = parsePrometheusText(text);
  const running = sumOf(samples, 'vllm:num_requests_running');
  const waiting = sumOf(samples, 'vllm:num_requests_waiting');
  if (running === null || waiting === null) throw badShape(VLLM_LOAD_PATH, 'vllm:num_requests_running and vllm:num_requests_waiting');
  const kvCacheUsage = meanOf(samples, 'vllm:kv_cache_usage_perc') ?? meanOf(samples, 'vllm:gpu_cache_usage_perc');
  return { running, waiting, kvCacheUsage, loadedModels: null };
}

export const pollVllmLoad: LoadPoller = async (get) => parseVllmLoad(okBody(await get(VLLM_LOAD_PATH), VLLM_LOAD_PATH));
