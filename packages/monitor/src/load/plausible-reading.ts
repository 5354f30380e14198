/**
 * An engine that lies is ignored, not believed: a negative or fractional-garbage count,
 * NaN, an infinite gauge or a queue no real server holds makes the whole reading absent,
 * so routing falls back to ai-lb's own counts for that node instead of chasing a number
 * that may be wrong in any direction.
 */
import { ProbeError } from '../probes/probe-error.ts';
import type { EngineLoadFacts } from './load-poller.ts';

/** Far above any real server's running + waiting (SGLang's own docs show 3 000). */
export const MAX_PLAUSIBLE_REQUESTS = 100_000;
/** More loaded models than any server lists is a broken answer, not a fleet. */
export const MAX_PLAUSIBLE_LOADED_MODELS = 1_000;
/** Float noise above 1 in a fill ratio (vLLM computes 1 - free/total). */
const RATIO_SLACK = 1e-6;

/** The facts with counts rounded and the ratio clamped to 0..1, or a bad_shape ProbeError. */
export function plausibleFacts(facts: EngineLoadFacts, what: string): EngineLoadFacts {
  return {
    running: count(facts.running, `${what}: running`),
    waiting: count(facts.waiting, `${what}: waiting`),
    kvCacheUsage: ratio(facts.kvCacheUsage, `${what}: KV-cache usage`),
    loadedModels: models(facts.loadedModels, what),
  };
}

function count(value: number | null, what: string): number | null {
  if (value === null) return null;
  if (!Number.isFinite(value) || value < 0 || value > MAX_PLAUSIBLE_REQUESTS) {
    throw new ProbeError('bad_shape', `${what} is ${value}, not a count from 0 to ${MAX_PLAUSIBLE_REQUESTS}`);
  }
  return Math.round(value);
}

function ratio(value: number | null, what: string): number | null {
  if (value === null) return null;
  if (!Number.isFinite(value) || value < 0 || value > 1 + RATIO_SLACK) {
    throw new ProbeError('bad_shape', `${what} is ${value}, not a ratio from 0 to 1`);
  }
  return Math.min(1, value);
}

function models(value: string[] | null, what: string): string[] | null {
  if (value === null) return null;
  if (value.length > MAX_PLAUSIBLE_LOADED_MODELS) {
    throw new ProbeError('bad_shape', `${what}: ${value.length} loaded models, more than ${MAX_PLAUSIBLE_LOADED_MODELS}`);
  }
  return [...new Set(value)];
}
