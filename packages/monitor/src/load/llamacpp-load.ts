/**
 * llama.cpp server: `GET /metrics` when started with --metrics
 * (`llamacpp:requests_processing`, `llamacpp:requests_deferred`, and on builds that still
 * export it `llamacpp:kv_cache_usage_ratio`); otherwise (HTTP 501) `GET /slots`, where the
 * busy slots are the running requests and the queue is not visible. /slots is on by
 * default; with --no-slots as well the node has no reading.
 */
import { ProbeError } from '../probes/probe-error.ts';
import { badShape, isRecord, jsonBody, okBody } from '../probes/probe-context.ts';
import type { EngineLoadFacts, LoadPoller } from './load-poller.ts';
import { parsePrometheusText, sumOf } from './prometheus-text.ts';

export const LLAMACPP_METRICS_PATH = '/metrics';
export const LLAMACPP_SLOTS_PATH = '/slots';

export function parseLlamaCppMetricsLoad(text: string): EngineLoadFacts {
  const samples = parsePrometheusText(text);
  const running = sumOf(samples, 'llamacpp:requests_processing');
  const waiting = sumOf(samples, 'llamacpp:requests_deferred');
  if (running === null || waiting === null) {
    throw badShape(LLAMACPP_METRICS_PATH, 'llamacpp:requests_processing and llamacpp:requests_deferred');
  }
  return { running, waiting, kvCacheUsage: sumOf(samples, 'llamacpp:kv_cache_usage_ratio'), loadedModels: null };
}

export function parseLlamaCppSlotsLoad(doc: unknown): EngineLoadFacts {
  if (!Array.isArray(doc) || !doc.every((slot) => isRecord(slot) && typeof slot.is_processing === 'boolean')) {
    throw badShape(LLAMACPP_SLOTS_PATH, 'an array of slots with "is_processing"');
  }
  const running = doc.filter((slot) => slot.is_processing === true).length;
  return { running, waiting: null, kvCacheUsage: null, loadedModels: null };
}

export const pollLlamaCppLoad: LoadPoller = async (get) => {
  try {
    return parseLlamaCppMetricsLoad(okBody(await get(LLAMACPP_METRICS_PATH), LLAMACPP_METRICS_PATH));
  } catch (error) {
    // Only "no metrics here" falls back; a timeout or garbage is this poll's answer.
    if (!(error instanceof ProbeError) || error.reason !== 'http_status') throw error;
  }
  return parseLlamaCppSlotsLoad(jsonBody(await get(LLAMACPP_SLOTS_PATH), LLAMACPP_SLOTS_PATH));
};
