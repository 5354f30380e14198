/**
 * vLLM: `GET /metrics` (Prometheus text) identifies it by its `vllm:` metrics and tells
 * its own queue: vllm:num_requests_running / vllm:num_requests_waiting, summed over
 * engines and models. vLLM's cap (--max-num-seqs) is not exposed by any endpoint, so
 * capacity is never detected.
 */
import { ProbeError } from './probe-error.ts';
import { okBody, tryGet, type KindProbe } from './probe-context.ts';

export const VLLM_METRICS_PATH = '/metrics';

export interface ServerLoad {
  running: number;
  waiting: number;
}

/** The server's queue from a /metrics page, or a bad_shape error when it has no vllm: metrics. */
export function parseVllmMetrics(text: string): ServerLoad {
  const sums = { running: 0, waiting: 0 };
  let vllmSamples = 0;
  for (const line of text.split('\n')) {
    const sample = parsePrometheusSample(line);
    if (!sample?.name.startsWith('vllm:')) continue;
    vllmSamples++;
    if (sample.name === 'vllm:num_requests_running') sums.running += sample.value;
    if (sample.name === 'vllm:num_requests_waiting') sums.waiting += sample.value;
  }
  if (vllmSamples === 0) throw new ProbeError('bad_shape', `${VLLM_METRICS_PATH}: no vllm: metrics`);
  return sums;
}

/**
 * One sample line of the Prometheus text format: `name{label="v",…} value [timestamp]`.
 * Label values may hold spaces, braces and escaped quotes, so labels are skipped by
 * walking the quotes rather than by splitting.
 */
export function parsePrometheusSample(line: string): { name: string; value: number } | null {
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
  if (!name) return null;
  let rest = line.slice(name.length);
  if (rest.startsWith('{')) {
    let inQuotes = false;
    let end = -1;
    for (let i = 1; i < rest.length && end < 0; i++) {
      if (inQuotes && rest[i] === '\\') i++;
      else if (rest[i] === '"') inQuotes = !inQuotes;
      else if (!inQuotes && rest[i] === '}') end = i;
    }
    if (end < 0) return null;
    rest = rest.slice(end + 1);
  }
  const value = Number(rest.trim().split(/\s+/)[0]);
  return rest.trim() === '' || !Number.isFinite(value) ? null : { name, value };
}

export const probeVllm: KindProbe = async (context) => {
  const load = await tryGet(context, VLLM_METRICS_PATH, (r) => parseVllmMetrics(okBody(r, VLLM_METRICS_PATH)));
  if (load === null) return null;
  return { kind: 'vllm', serverLoad: load, detectedMaxconn: null };
};
