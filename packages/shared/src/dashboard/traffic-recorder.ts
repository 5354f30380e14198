/**
 * What one process answered over the last 15 minutes, for the dashboard: a ring of 10 s
 * buckets, each with counts by status class, failovers, 429s, queue waits, and per model
 * and per node a small latency / TTFT histogram plus output tokens.
 *
 * A record costs O(1): one bucket lookup, a constant-size histogram search, two Map hits.
 * Memory is bounded: 90 buckets, and label values only from the models and nodes the fleet
 * knows (setKnownLabels), everything else counted under `other`, so a client that sends a
 * new model name per request cannot grow it. A bucket is reset when the ring comes round
 * to it again; nothing runs on a timer.
 */
import type { Clock } from '../types.ts';
import { systemClock } from '../types.ts';
import { addInto, createHistogram, observe, quantile } from './latency-histogram.ts';

/** One answered request, as the gateway's pipeline knows it when the response has ended. */
export interface RequestRecord {
  /** The resolved model; null when the request never got that far (bad body, unknown model). */
  model: string | null;
  /** The node that answered last; null when no node answered (429, 502 with nothing reached). */
  node: string | null;
  /** HTTP status the client got. */
  status: number;
  /** Request start to the end of the response (streams: to their end). */
  durationMs: number;
  /** Request start to the first token sent to the client (streams); absent otherwise. */
  ttftMs?: number | null;
  /** Completion tokens from the upstream's usage, where it reported them. */
  outputTokens?: number | null;
  /** Attempts that moved the request to another node. */
  failovers?: number;
  /** Time spent waiting for a free slot; absent when the request did not wait. */
  queueWaitMs?: number | null;
}

export type LabelKind = 'model' | 'node';

/** The label every unknown model or node is counted under. */
export const OTHER_LABEL = 'other';
/** The label of requests without a model or node (rejected before routing, or no node answered). */
export const NONE_LABEL = 'none';

interface LabelStats {
  requests: number;
  /** Model: responses with status >= 500. Node: failed upstream attempts (recordAttemptError). */
  errors: number;
  latency: Uint32Array;
  ttft: Uint32Array;
  outputTokens: number;
}

interface Bucket {
  startMs: number;
  requests: number;
  status2xx: number;
  status3xx: number;
  status4xx: number;
  status5xx: number;
  rejected429: number;
  failovers: number;
  queued: number;
  queueWaitMsTotal: number;
  latency: Uint32Array;
  outputTokens: number;
  labels: Record<LabelKind, Map<string, LabelStats>>;
}

/** One 10 s step of the 15-minute series, oldest first. Empty buckets are all zeros. */
export interface TrafficPoint {
  startMs: number;
  /** How much of the bucket has passed: bucketMs, except for the current bucket. */
  durationMs: number;
  requests: number;
  status2xx: number;
  status3xx: number;
  status4xx: number;
  status5xx: number;
  /** Responses 429 (no slot in time, or an upstream's own 429 passed on). */
  rejected429: number;
  /** Attempts moved to another node. */
  failovers: number;
  /** Requests that waited for a slot, and the mean of their waits (null when none waited). */
  queued: number;
  queueWaitMsMean: number | null;
  latencyMsP50: number | null;
  latencyMsP99: number | null;
  outputTokens: number;
}

/** One model's or node's traffic over a recent window (the dashboard uses the last minute). */
export interface LabelSummary {
  requests: number;
  errors: number;
  requestsPerSec: number;
  latencyMsP50: number | null;
  latencyMsP99: number | null;
  ttftMsP50: number | null;
  ttftMsP99: number | null;
  outputTokens: number;
  tokensPerSec: number;
}

/** What the dashboard reads (TrafficRecorder implements it; tests may hand in a fixed one). */
export interface TrafficView {
  readonly bucketMs: number;
  readonly windowMs: number;
  series(nowMs: number): TrafficPoint[];
  summaries(kind: LabelKind, windowMs: number, nowMs: number): Map<string, LabelSummary>;
  /** The last failed attempt's message per node (known nodes only). */
  lastErrors(): ReadonlyMap<string, { message: string; atMs: number }>;
}

export interface TrafficRecorderOptions {
  clock?: Clock;
  /** Default 10 s. */
  bucketMs?: number;
  /** Default 15 min; a multiple of bucketMs. */
  windowMs?: number;
  /** Most label values kept per kind (a fleet larger than this shows the rest as `other`). Default 1024. */
  maxLabels?: number;
}

export class TrafficRecorder implements TrafficView {
  readonly bucketMs: number;
  readonly windowMs: number;
  private readonly clock: Clock;
  private readonly maxLabels: number;
  private readonly ring: Bucket[];
  /** The newest bucket: nearly every record lands in it, so it is checked first. */
  private current: Bucket;
  private known: Record<LabelKind, ReadonlySet<string>> = { model: new Set(), node: new Set() };
  private readonly errors = new Map<string, { message: string; atMs: number }>();

  constructor(options: TrafficRecorderOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.bucketMs = options.bucketMs ?? 10_000;
    this.windowMs = options.windowMs ?? 15 * 60_000;
    this.maxLabels = options.maxLabels ?? 1024;
    const count = Math.ceil(this.windowMs / this.bucketMs);
    this.ring = Array.from({ length: count }, () => emptyBucket(Number.NEGATIVE_INFINITY));
    this.current = this.ring[0];
  }

  /** The models and nodes that get a label of their own; call when the fleet changes. */
  setKnownLabels(models: Iterable<string>, nodes: Iterable<string>): void {
    this.known = { model: firstN(models, this.maxLabels), node: firstN(nodes, this.maxLabels) };
    for (const node of this.errors.keys()) if (!this.known.node.has(node)) this.errors.delete(node);
  }

  record(request: RequestRecord): void {
    const bucket = this.bucketAt(this.clock());
    if (!bucket) return;
    bucket.requests++;
    const status = request.status;
    if (status >= 500) bucket.status5xx++;
    else if (status >= 400) bucket.status4xx++;
    else if (status >= 300) bucket.status3xx++;
    else if (status >= 200) bucket.status2xx++;
    if (status === 429) bucket.rejected429++;
    bucket.failovers += request.failovers ?? 0;
    if (request.queueWaitMs != null && request.queueWaitMs >= 0) {
      bucket.queued++;
      bucket.queueWaitMsTotal += request.queueWaitMs;
    }
    observe(bucket.latency, request.durationMs);
    const tokens = request.outputTokens != null && request.outputTokens > 0 ? request.outputTokens : 0;
    bucket.outputTokens += tokens;
    const failed = status >= 500;
    this.addTo(bucket, 'model', request.model, request, tokens, failed);
    // A node's errors are its failed attempts (recordAttemptError), whichever node answered last.
    this.addTo(bucket, 'node', request.node, request, tokens, false);
  }

  /** A failed upstream attempt (the request may still succeed on another node). */
  recordAttemptError(node: string, message: string): void {
    const bucket = this.bucketAt(this.clock());
    if (bucket) this.stats(bucket, 'node', node).errors++;
    if (this.known.node.has(node)) this.errors.set(node, { message: message.slice(0, 300), atMs: this.clock() });
  }

  series(nowMs: number): TrafficPoint[] {
    const newest = this.slotStart(nowMs);
    const points: TrafficPoint[] = [];
    for (let start = newest - (this.ring.length - 1) * this.bucketMs; start <= newest; start += this.bucketMs) {
      const bucket = this.live(start);
      const durationMs = start === newest ? Math.max(nowMs - start, 1) : this.bucketMs;
      points.push(bucket ? toPoint(bucket, durationMs) : zeroPoint(start, durationMs));
    }
    return points;
  }

  summaries(kind: LabelKind, windowMs: number, nowMs: number): Map<string, LabelSummary> {
    const newest = this.slotStart(nowMs);
    const buckets = Math.min(Math.ceil(windowMs / this.bucketMs), this.ring.length);
    const oldest = newest - (buckets - 1) * this.bucketMs;
    const seconds = Math.max(nowMs - oldest, 1) / 1000;
    const merged = new Map<string, LabelStats>();
    for (let start = oldest; start <= newest; start += this.bucketMs) {
      for (const [label, stats] of this.live(start)?.labels[kind] ?? []) {
        let into = merged.get(label);
        if (!into) {
          into = emptyStats();
          merged.set(label, into);
        }
        into.requests += stats.requests;
        into.errors += stats.errors;
        into.outputTokens += stats.outputTokens;
        addInto(into.latency, stats.latency);
        addInto(into.ttft, stats.ttft);
      }
    }
    const out = new Map<string, LabelSummary>();
    for (const [label, s] of merged) out.set(label, summarize(s, seconds));
    return out;
  }

  lastErrors(): ReadonlyMap<string, { message: string; atMs: number }> {
    return this.errors;
  }

  private addTo(bucket: Bucket, kind: LabelKind, value: string | null, request: RequestRecord, tokens: number, failed: boolean): void {
    const stats = this.stats(bucket, kind, value);
    stats.requests++;
    if (failed) stats.errors++;
    observe(stats.latency, request.durationMs);
    if (request.ttftMs != null) observe(stats.ttft, request.ttftMs);
    stats.outputTokens += tokens;
  }

  private stats(bucket: Bucket, kind: LabelKind, value: string | null): LabelStats {
    const label = value === null || value === '' ? NONE_LABEL : this.known[kind].has(value) ? value : OTHER_LABEL;
    const map = bucket.labels[kind];
    let stats = map.get(label);
    if (!stats) {
      stats = emptyStats();
      map.set(label, stats);
    }
    return stats;
  }

  private slotStart(ms: number): number {
    return Math.floor(ms / this.bucketMs) * this.bucketMs;
  }

  /** The bucket for time `ms`, reset if it last held an older slot; undefined for a time already out of the ring. */
  private bucketAt(ms: number): Bucket | undefined {
    const current = this.current;
    if (ms >= current.startMs && ms < current.startMs + this.bucketMs) return current;
    const start = this.slotStart(ms);
    const index = (((start / this.bucketMs) % this.ring.length) + this.ring.length) % this.ring.length;
    const bucket = this.ring[index];
    if (bucket.startMs > start) return undefined;
    if (bucket.startMs < start) this.ring[index] = emptyBucket(start);
    if (this.ring[index].startMs > this.current.startMs) this.current = this.ring[index];
    return this.ring[index];
  }

  private live(start: number): Bucket | undefined {
    const index = (((start / this.bucketMs) % this.ring.length) + this.ring.length) % this.ring.length;
    const bucket = this.ring[index];
    return bucket.startMs === start ? bucket : undefined;
  }
}

function firstN(values: Iterable<string>, n: number): Set<string> {
  const out = new Set<string>();
  for (const value of values) {
    if (out.size >= n) break;
    out.add(value);
  }
  return out;
}

function emptyStats(): LabelStats {
  return { requests: 0, errors: 0, latency: createHistogram(), ttft: createHistogram(), outputTokens: 0 };
}

function emptyBucket(startMs: number): Bucket {
  return {
    startMs,
    requests: 0,
    status2xx: 0,
    status3xx: 0,
    status4xx: 0,
    status5xx: 0,
    rejected429: 0,
    failovers: 0,
    queued: 0,
    queueWaitMsTotal: 0,
    latency: createHistogram(),
    outputTokens: 0,
    labels: { model: new Map(), node: new Map() },
  };
}

function toPoint(b: Bucket, durationMs: number): TrafficPoint {
  return {
    startMs: b.startMs,
    durationMs,
    requests: b.requests,
    status2xx: b.status2xx,
    status3xx: b.status3xx,
    status4xx: b.status4xx,
    status5xx: b.status5xx,
    rejected429: b.rejected429,
    failovers: b.failovers,
    queued: b.queued,
    queueWaitMsMean: b.queued > 0 ? b.queueWaitMsTotal / b.queued : null,
    latencyMsP50: quantile(b.latency, 0.5),
    latencyMsP99: quantile(b.latency, 0.99),
    outputTokens: b.outputTokens,
  };
}

function zeroPoint(startMs: number, durationMs: number): TrafficPoint {
  return {
    startMs,
    durationMs,
    requests: 0,
    status2xx: 0,
    status3xx: 0,
    status4xx: 0,
    status5xx: 0,
    rejected429: 0,
    failovers: 0,
    queued: 0,
    queueWaitMsMean: null,
    latencyMsP50: null,
    latencyMsP99: null,
    outputTokens: 0,
  };
}

function summarize(s: LabelStats, seconds: number): LabelSummary {
  return {
    requests: s.requests,
    errors: s.errors,
    requestsPerSec: s.requests / seconds,
    latencyMsP50: quantile(s.latency, 0.5),
    latencyMsP99: quantile(s.latency, 0.99),
    ttftMsP50: quantile(s.ttft, 0.5),
    ttftMsP99: quantile(s.ttft, 0.99),
    outputTokens: s.outputTokens,
    tokensPerSec: s.outputTokens / seconds,
  };
}
