/**
 * Fixed-bucket millisecond histograms for the dashboard's quantiles. A sample costs a short
 * search over a constant table and one increment, and histograms of several 10 s buckets
 * add up by summing counts, which a ring of recent samples or a digest would not give as
 * cheaply. The price is resolution: a quantile is interpolated inside its bucket, as
 * Prometheus' histogram_quantile does, so p99 of a bucket spanning 1-2.5 s is an estimate.
 */

/** Upper bounds in ms (the last bucket is everything above the last bound). */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  5, 10, 25, 50, 75, 100, 150, 250, 400, 600, 1000, 1500, 2500, 4000, 6000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
];

/** One count per bound plus one for values above the last bound. */
export const LATENCY_BUCKETS = LATENCY_BOUNDS_MS.length + 1;

export function createHistogram(): Uint32Array {
  return new Uint32Array(LATENCY_BUCKETS);
}

/** Index of the first bound >= valueMs (binary search: 5 steps for 21 bounds). */
export function bucketIndex(valueMs: number): number {
  let lo = 0;
  let hi = LATENCY_BOUNDS_MS.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (LATENCY_BOUNDS_MS[mid] < valueMs) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function observe(histogram: Uint32Array, valueMs: number): void {
  if (!Number.isFinite(valueMs) || valueMs < 0) return;
  histogram[bucketIndex(valueMs)]++;
}

/** Adds `from` into `into` (both LATENCY_BUCKETS long). */
export function addInto(into: Uint32Array, from: Uint32Array): void {
  for (let i = 0; i < LATENCY_BUCKETS; i++) into[i] += from[i];
}

/**
 * The q-quantile (0..1) in ms, linearly interpolated inside its bucket (the first bucket
 * starts at 0); null for an empty histogram. Values above the last bound report the last
 * bound: the histogram cannot say more.
 */
export function quantile(histogram: Uint32Array, q: number): number | null {
  let total = 0;
  for (let i = 0; i < LATENCY_BUCKETS; i++) total += histogram[i];
  if (total === 0) return null;
  const rank = Math.min(Math.max(q, 0), 1) * total;
  let below = 0;
  for (let i = 0; i < LATENCY_BUCKETS; i++) {
    const count = histogram[i];
    if (count > 0 && below + count >= rank) {
      if (i === LATENCY_BOUNDS_MS.length) return LATENCY_BOUNDS_MS[i - 1];
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1];
      const upper = LATENCY_BOUNDS_MS[i];
      return lower + (upper - lower) * ((rank - below) / count);
    }
    below += count;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1];
}
