/**
 * SGLang `GET /metrics` (only with --enable-metrics; without it the poll fails and the
 * node has no reading): `sglang:num_running_reqs`, `sglang:num_queue_reqs` summed over
 * label sets (data-parallel ranks), `sglang:token_usage` (KV-pool fill, 0..1) averaged.
 */
import { badShape, okBody } from '../probes/probe-context.ts';
import type { LoadPoller } from './load-poller.ts';
import { meanOf, parsePrometheusText, sumOf } from './prometheus-text.ts';

export const SGLANG_LOAD_PATH = '/metrics';

export function parseSglangLoad(text: string) {
  const samples = parsePrometheusText(text);
  const running = sumOf(samples, 'sglang:num_running_reqs');
  const waiting = sumOf(samples, 'sglang:num_queue_reqs');
  if (running === null || waiting === null) throw badShape(SGLANG_LOAD_PATH, 'sglang:num_running_reqs and sglang:num_queue_reqs');
  return { running, waiting, kvCacheUsage: meanOf(samples, 'sglang:token_usage'), loadedModels: null };
}

export const pollSglangLoad: LoadPoller = async (get) => parseSglangLoad(okBody(await get(SGLANG_LOAD_PATH), SGLANG_LOAD_PATH));
