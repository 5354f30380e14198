/**
 * Orders candidates on what the engines report (pure: no I/O, no side effects). One
 * comparator, read top to bottom:
 *
 *  1. a node that can start the request now before a full one (full: every slot busy
 *     counting outside requests, or the engine already queues);
 *  2. warm before cold: a node with the model loaded before one that would load it — so a
 *     request never triggers a model load while a warm node has a free slot;
 *  3. NODE_PRIORITY, lower first: lower-priority machines get requests only once the
 *     preferred ones are full (rule 1 comes first);
 *  4. load: ai-lb's in-flight + the engine's requests from elsewhere, over capacity;
 *  5. KV-cache usage, the tie-breaker: of two equally busy nodes, the one with room for a
 *     long prompt;
 *  6. the given order (shuffle first to spread an idle fleet).
 *
 * Fleet-wide caps stay with the store: these orders only say which node to try first.
 */
import { isFull, loadRatio, type EngineAwareCandidate } from './engine-candidate.ts';

/** LEAST_LOADED with engine signals: every candidate, best first. */
export function rankByEngineLoad<T extends EngineAwareCandidate>(candidates: readonly T[]): T[] {
  // Array.prototype.sort is stable: equal candidates keep the given order (rule 6).
  return [...candidates].sort(compareByEngineLoad);
}

export function compareByEngineLoad(a: EngineAwareCandidate, b: EngineAwareCandidate): number {
  return compareTier(a, b) || compareNumbers(loadRatio(a), loadRatio(b)) || compareNumbers(kv(a), kv(b));
}

/** Rules 1-3: full, warm, priority. Shared with cache affinity, which orders within a tier by its ring. */
export function compareTier(a: EngineAwareCandidate, b: EngineAwareCandidate): number {
  return compareBooleans(isFull(a), isFull(b)) || compareBooleans(a.warm === false, b.warm === false) || a.priority - b.priority;
}

/**
 * P2C with engine signals: two random candidates of the best tier, the less loaded first
 * (with `extraCost` — latency, recent failures — added to the load ratio as the existing
 * P2C cost does); then the rest, ranked by engine load, so the store has somewhere to go
 * when both are full.
 */
export function powerOfTwoByEngineLoad<T extends EngineAwareCandidate>(
  candidates: readonly T[],
  random: () => number,
  extraCost: (c: T) => number = () => 0,
): T[] {
  const ranked = rankByEngineLoad(candidates);
  const tier = ranked.filter((c) => compareTier(c, ranked[0]) === 0);
  if (tier.length <= 1) return ranked;
  const a = Math.floor(random() * tier.length);
  let b = Math.floor(random() * (tier.length - 1));
  if (b >= a) b++;
  const cost = (c: T) => loadRatio(c) + extraCost(c);
  const [first, second] = compareNumbers(cost(tier[b]), cost(tier[a])) < 0 ? [tier[b], tier[a]] : [tier[a], tier[b]];
  return [first, second, ...ranked.filter((c) => c !== first && c !== second)];
}

/** Unknown KV usage sorts as empty: no reading is no evidence of a full cache. */
function kv(c: EngineAwareCandidate): number {
  return c.engine?.kvCacheUsage ?? 0;
}

/** false before true. */
function compareBooleans(a: boolean, b: boolean): number {
  return a === b ? 0 : a ? 1 : -1;
}

/** Infinity - Infinity is NaN: compare, do not subtract. */
function compareNumbers(a: number, b: number): number {
  return a === b ? 0 : a < b ? -1 : 1;
}
