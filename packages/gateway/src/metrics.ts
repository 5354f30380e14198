import { Counter, Histogram, Registry } from 'prom-client';
import { performance } from 'node:perf_hooks';
import {
  type AccessLog,
  JSON_NUMBER_MAX_BYTES,
  jsonStringMaxBytes,
  type LineEncoder,
  type NodeId,
  putAscii,
  putBytes,
  putJsonNumber,
  putJsonString,
} from '@ai-lb/shared';
import type { Exchange } from './http/exchange.ts';
import { registerFleetGauges, type FleetGaugeSource, type GaugeSources } from './observability/fleet-gauges.ts';
import type { RequestOutcome, RequestSummary } from './observability/request-summary.ts';

/**
 * The metrics updated on every request, as prom-client custom metrics. prom-client resolves
 * a label set on every call — it validates each label, sorts the label names and joins them
 * into a hash — several % of the gateway's busy time at a few calls per request. Here a
 * label set is found by its values joined in a fixed order, one Map lookup. The registry
 * renders these exactly as it renders its own Counter/Gauge/Histogram (the same `get()`
 * shape), so /metrics reads the same (metrics.test.ts compares the text).
 */
abstract class FastMetric<L extends string, C> {
  /** Every label set's child, in creation order, for rendering. */
  protected readonly children: C[] = [];
  /**
   * The per-call lookup: one Map level per label name, keyed by that label's value, the
   * child at the last level — no key string is built (and hashed) per call.
   */
  private readonly tree = new Map<string, unknown>();

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    private readonly labelNames: readonly L[],
  ) {
    registry.registerMetric(this as never);
  }

  /** The child of this label set, created on first use. */
  protected child(labels: Record<L, string>): C {
    const names = this.labelNames;
    let level = this.tree;
    for (let i = 0; i < names.length - 1; i++) {
      const value = labels[names[i]];
      let next = level.get(value) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    const last = names.length === 0 ? '' : labels[names[names.length - 1]];
    let child = level.get(last) as C | undefined;
    if (child === undefined) {
      child = this.create({ ...labels });
      level.set(last, child);
      this.children.push(child);
    }
    return child;
  }

  protected abstract create(labels: Record<L, string>): C;

  /** What prom-client's Registry reads (Registry#getMetricsAsString / getMetricsAsJSON). */
  get(): { name: string; help: string; type: string; aggregator: 'sum'; values: MetricValue[] } {
    return { name: this.name, help: this.help, type: this.type, aggregator: 'sum', values: this.values() };
  }

  protected abstract values(): MetricValue[];

  reset(): void {
    this.children.length = 0;
    this.tree.clear();
  }
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface ValueChild<L extends string> {
  labels: Record<L, string>;
  value: number;
}

/** A counter or gauge: one number per label set. */
abstract class ValueMetric<L extends string> extends FastMetric<L, ValueChild<L>> {
  protected create(labels: Record<L, string>): ValueChild<L> {
    return { labels, value: 0 };
  }

  protected values(): MetricValue[] {
    return this.children.map(({ labels, value }) => ({ labels, value }));
  }

  /** The child for a label set: hold it and change its value (no lookup per change). */
  labels(labels: Record<L, string>): { value: number } {
    return this.child(labels);
  }
}

export class FastCounter<L extends string> extends ValueMetric<L> {
  constructor(registry: Registry, config: { name: string; help: string; labelNames: readonly L[] }) {
    super(registry, config.name, config.help, 'counter', config.labelNames);
  }

  inc(labels: Record<L, string>, value = 1): void {
    this.child(labels).value += value;
  }
}

export class FastGauge<L extends string> extends ValueMetric<L> {
  constructor(registry: Registry, config: { name: string; help: string; labelNames: readonly L[] }) {
    super(registry, config.name, config.help, 'gauge', config.labelNames);
  }
}

interface HistogramChild<L extends string> {
  labels: Record<L, string>;
  /** Observations per bucket, not cumulative; index buckets.length = above the last bound. */
  counts: number[];
  sum: number;
  count: number;
}

export class FastHistogram<L extends string> extends FastMetric<L, HistogramChild<L>> {
  private readonly buckets: readonly number[];

  constructor(registry: Registry, config: { name: string; help: string; labelNames: readonly L[]; buckets: readonly number[] }) {
    super(registry, config.name, config.help, 'histogram', config.labelNames);
    this.buckets = [...config.buckets].sort((a, b) => a - b);
  }

  observe(labels: Record<L, string>, value: number): void {
    if (!Number.isFinite(value)) return;
    const child = this.child(labels);
    const { buckets } = this;
    let i = 0;
    while (i < buckets.length && value > buckets[i]) i++;
    child.counts[i]++;
    child.sum += value;
    child.count++;
  }

  protected create(labels: Record<L, string>): HistogramChild<L> {
    return { labels, counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  protected values(): MetricValue[] {
    const values: MetricValue[] = [];
    for (const { labels, counts, sum, count } of this.children) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += counts[i];
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: count });
      values.push({ metricName: `${this.name}_sum`, labels, value: sum });
      values.push({ metricName: `${this.name}_count`, labels, value: count });
    }
    return values;
  }
}

/** What the metrics read of the fleet: which label values are known, and the scrape-time gauges. */
export interface FleetMetricsSource extends FleetGaugeSource {
  node(id: NodeId): unknown;
  knownModel(name: string): string | undefined;
}

export interface GatewayMetricsOptions {
  /** LOG_REQUESTS: the logger that gets one access-log line per routed request; null = no lines. */
  accessLog?: AccessLog | null;
}

/** The label of requests that never got a model or node; and of values the fleet does not know. */
const NONE = 'none';
const OTHER = 'other';

/** Finished requests kept for the dashboard between its drains; a full queue is drained at once. */
const MAX_FINISHED_QUEUED = 16_384;

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/**
 * Every metric of the gateway, on its own Registry (tests create many gateways in one
 * process; the global registry would collide). Label values are bounded: `model` and
 * `node` only ever take values the fleet knows (anything else is "other", "none" when there
 * is none), `route`, `status`, `reason`, `type` come from fixed sets — never from raw
 * request input, never a session or request id.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private sources: (GaugeSources & { fleet: FleetMetricsSource }) | undefined;
  /** The access log and the encoder of its lines (with the log's bindings). */
  private readonly accessLog: { log: AccessLog; line: LineEncoder<RequestSummary> } | null;
  private finished: RequestSummary[] = [];
  private drain: (() => void) | null = null;
  private drainMs = 0;
  private drainTimer: NodeJS.Timeout | undefined;
  /** A failed upstream attempt, with its message (the dashboard's last error per node). */
  onAttemptFailure: ((node: NodeId, message: string) => void) | null = null;

  // Updated on every request: the Fast* metrics below.
  readonly requests = new FastCounter(this.registry, {
    name: 'ai_lb_requests_total',
    help: 'Requests answered, by route, resolved model, node that answered and HTTP status',
    labelNames: ['route', 'model', 'node', 'status'] as const,
  });

  readonly requestDuration = new FastHistogram(this.registry, {
    name: 'ai_lb_request_duration_seconds',
    help: 'Time from request start to the end of the response (streams: to their end)',
    labelNames: ['route', 'stream', 'model', 'node'] as const,
    buckets: LATENCY_BUCKETS,
  });

  readonly timeToFirstToken = new FastHistogram(this.registry, {
    name: 'ai_lb_time_to_first_token_seconds',
    help: 'Streams: time from request start until the first data event went to the client',
    labelNames: ['model', 'node'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60],
  });

  readonly timePerOutputToken = new FastHistogram(this.registry, {
    name: 'ai_lb_time_per_output_token_seconds',
    help: 'Streams: time per completion token after the first ((end - first token) / (completion tokens - 1))',
    labelNames: ['model', 'node'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1],
  });

  readonly tokens = new FastCounter(this.registry, {
    name: 'ai_lb_tokens_total',
    help: 'Tokens by type: prompt and completion from the upstream usage; a stream without usage counts its data events as completion tokens',
    labelNames: ['model', 'node', 'type'] as const,
  });

  readonly gatewayOverhead = new FastHistogram(this.registry, {
    name: 'ai_lb_gateway_overhead_seconds',
    help: 'Time the gateway itself spent on a request answered by its first attempt: before the upstream was called (queue wait excluded) plus after it answered',
    labelNames: ['route'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  });

  readonly streamTtfb = new FastHistogram(this.registry, {
    name: 'ai_lb_stream_time_to_first_byte_seconds',
    help: 'Time from request start until the first stream bytes were sent to the client',
    labelNames: ['model'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });

  readonly inflight = new FastGauge(this.registry, {
    name: 'ai_lb_node_inflight',
    help: 'Requests this gateway process has in flight per node',
    labelNames: ['node'] as const,
  });

  readonly placements = new FastCounter(this.registry, {
    name: 'ai_lb_slot_placements_total',
    help: 'Attempts placed on a node, by how: local (uncapped, no store call), reserve (a slot of a capped node leased ahead in a block, no store call), store (one acquireSlot)',
    labelNames: ['via'] as const,
  });

  readonly upstreamFailures = new Counter({
    name: 'ai_lb_upstream_failures_total',
    help: 'Failed upstream attempts by node and reason',
    labelNames: ['node', 'reason'] as const,
    registers: [this.registry],
  });

  readonly retries = new Counter({
    name: 'ai_lb_retries_total',
    help: 'Attempts after the first one, by whether they went to another node (failover) or the same',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly droppedSseEvents = new Counter({
    name: 'ai_lb_sse_dropped_events_total',
    help: 'Upstream SSE events dropped because their data was not valid JSON',
    labelNames: ['node'] as const,
    registers: [this.registry],
  });

  readonly streamResumes = new Counter({
    name: 'ai_lb_stream_resumes_total',
    help: 'Streams that broke after content went out and were continued on another node (STREAM_RESUME), by how it ended',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly capacityRejections = new Counter({
    name: 'ai_lb_capacity_rejections_total',
    help: 'Requests answered 429 because every eligible node was at its cap (or answered 429 itself)',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly queueWait = new Histogram({
    name: 'ai_lb_queue_wait_seconds',
    help: 'Time requests waited for a free slot (QUEUE_TIMEOUT_MS > 0)',
    labelNames: ['result'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  constructor(options: GatewayMetricsOptions = {}) {
    const { accessLog } = options;
    this.accessLog = accessLog ? { log: accessLog, line: accessLineEncoder(accessLog.bindings) } : null;
    registerFleetGauges(this.registry, () => this.sources, 'ai_lb_');
  }

  /**
   * One routed request ended (the router's onFinished): the one observer of a request's
   * end. Its summary is built once; the metrics read it, it is the access-log line, it
   * ends the trace, and it waits for the dashboard's next drain.
   */
  recordRequest(exchange: Exchange): void {
    const endedAt = performance.now();
    const summary = summarize(exchange, endedAt);
    const route = summary.surface;
    const model = this.modelLabel(summary.model);
    const node = this.nodeLabel(summary.node);
    this.requests.inc({ route, model, node, status: statusLabel(summary.outcome, summary.status) });
    this.requestDuration.observe({ route, stream: summary.stream ? 'true' : 'false', model, node }, summary.durationMs / 1000);
    if (summary.ttftMs !== null) this.timeToFirstToken.observe({ model, node }, summary.ttftMs / 1000);
    const { promptTokens, completionTokens } = summary;
    if (promptTokens !== null && promptTokens > 0) this.tokens.inc({ model, node, type: 'prompt' }, promptTokens);
    if (completionTokens !== null && completionTokens > 0) {
      this.tokens.inc({ model, node, type: 'completion' }, completionTokens);
      const { firstTokenAt } = exchange;
      const streamEnd = upstreamEnd(exchange, endedAt);
      if (summary.stream && completionTokens > 1 && firstTokenAt !== null && streamEnd !== null && streamEnd > firstTokenAt) {
        this.timePerOutputToken.observe({ model, node }, (streamEnd - firstTokenAt) / (completionTokens - 1) / 1000);
      }
    }
    const overheadMs = gatewayOverheadMs(exchange, endedAt);
    if (overheadMs !== null) this.gatewayOverhead.observe({ route }, overheadMs / 1000);
    if (this.accessLog !== null) this.accessLog.log.writeLater(this.accessLog.line, summary);
    if (exchange.trace !== null) exchange.trace.end(summary);
    if (this.drain !== null) {
      const queued = this.finished.push(summary);
      if (queued >= MAX_FINISHED_QUEUED) this.drain();
      else if (queued === 1 && this.drainTimer === undefined) {
        this.drainTimer = setTimeout(this.drainDue, this.drainMs);
        this.drainTimer.unref();
      }
    }
  }

  /** An upstream attempt failed (the request may still succeed on another node). */
  noteAttemptFailure(exchange: Exchange, node: NodeId, reason: string, message: string): void {
    this.upstreamFailures.inc({ node, reason });
    this.onAttemptFailure?.(node, message);
    exchange.trace?.attemptFailed(reason, message);
  }

  /**
   * The dashboard's feed: from now on finished requests are kept for `drain`, which runs
   * `drainMs` after the first one queued (and whenever the dashboard reads), taking them with
   * takeFinished(). Recording a request is then one push; the traffic recorder's work
   * happens off the request's path. The wait is short on purpose: a summary queued for a
   * second outlives two young-generation collections and is copied into the old generation,
   * where every one of them costs a major collection's work; one drained within tens of
   * milliseconds dies young. An idle gateway sets no timer. Returns the stop.
   */
  keepFinished(drain: () => void, drainMs: number): () => void {
    this.drain = drain;
    this.drainMs = drainMs;
    return () => {
      this.drain = null;
      this.finished = [];
      clearTimeout(this.drainTimer);
      this.drainTimer = undefined;
    };
  }

  private readonly drainDue = (): void => {
    this.drainTimer = undefined;
    this.drain?.();
  };

  takeFinished(): RequestSummary[] {
    const taken = this.finished;
    this.finished = [];
    return taken;
  }

  /** What the scrape-time gauges and the label checks read; the sources are built after the metrics (createGateway). */
  watch(sources: GaugeSources & { fleet: FleetMetricsSource }): void {
    this.sources = sources;
  }

  private modelLabel(model: string | null): string {
    if (model === null) return NONE;
    return this.sources?.fleet.knownModel(model) === model ? model : OTHER;
  }

  private nodeLabel(node: string | null): string {
    if (node === null) return NONE;
    return this.sources?.fleet.node(node) !== undefined ? node : OTHER;
  }
}

function statusLabel(outcome: RequestOutcome, status: number): string {
  return outcome === 'aborted' || outcome === 'stream_error' ? outcome : String(status);
}

/** A request as its access-log line says it (see RequestSummary), from what the exchange carried to its end. */
export function summarize(exchange: Exchange, endedAt: number): RequestSummary {
  const { req, res } = exchange;
  const finished = res.writableFinished;
  const status = !finished && !res.headersSent ? 499 : res.statusCode;
  const usage = exchange.usage;
  const estimated = usage === null && exchange.eventStream && exchange.contentEvents > 0;
  const forwarded = req.headers['x-forwarded-for'];
  const requested = exchange.requestedModel;
  return {
    requestId: exchange.requestId,
    method: req.method ?? 'GET',
    path: exchange.path.length > 200 ? exchange.path.slice(0, 200) : exchange.path,
    surface: exchange.surface ?? 'other',
    client: req.socket.remoteAddress ?? null,
    forwardedFor: typeof forwarded === 'string' ? forwarded.slice(0, 200) : null,
    modelRequested: requested === null || requested.length <= 200 ? requested : requested.slice(0, 200),
    model: exchange.model,
    node: exchange.node,
    status,
    outcome: !finished ? 'aborted' : exchange.streamBroken ? 'stream_error' : status >= 400 ? 'error' : 'ok',
    stream: exchange.eventStream,
    attempts: exchange.attempts,
    failovers: exchange.attempts > 1 ? exchange.attempts - 1 : 0,
    queueWaitMs: exchange.queueWaitMs === null ? null : roundMs(exchange.queueWaitMs),
    ttftMs: exchange.eventStream && exchange.firstTokenAt !== null ? roundMs(exchange.firstTokenAt - exchange.startedAt) : null,
    durationMs: roundMs(endedAt - exchange.startedAt),
    promptTokens: usage === null ? null : usage.promptTokens,
    completionTokens: usage !== null ? usage.completionTokens : estimated ? exchange.contentEvents : null,
    tokensEstimated: estimated,
  };
}

/**
 * The gateway's own time on a request answered by its first attempt: from the start to the
 * upstream call (body, routing, the slot's round trip — not a queue wait) plus from the
 * answer's end to the response's end. Failed attempts before the last are not overhead but
 * failover (ai_lb_retries_total), so only first-attempt answers are measured.
 */
function gatewayOverheadMs(exchange: Exchange, endedAt: number): number | null {
  const { upstreamStartAt } = exchange;
  const upstreamEndAt = upstreamEnd(exchange, endedAt);
  if (exchange.attempts !== 1 || upstreamStartAt === null || upstreamEndAt === null) return null;
  const before = upstreamStartAt - exchange.startedAt - (exchange.queueWaitMs ?? 0);
  return Math.max(before, 0) + Math.max(endedAt - upstreamEndAt, 0);
}

/**
 * When the answer's upstream side ended. A stream's response can be reported closed before
 * the attempt noted its end (its last write ends the response; 'close' may run first), so a
 * stream that went out without an end noted ended now.
 */
function upstreamEnd(exchange: Exchange, endedAt: number): number | null {
  if (exchange.upstreamEndAt !== null) return exchange.upstreamEndAt;
  return exchange.eventStream && exchange.upstreamStartAt !== null ? endedAt : null;
}

function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/**
 * The access-log line of a request: what `log.info(summary, 'request')` writes (level label,
 * epoch-ms time, the logger's bindings, the summary's fields in order, msg), byte for byte.
 * Encoded by hand, straight into the log's buffer when its batch is written
 * (LineWriter.writeLater), rather than by JSON.stringify on the request's path: a summary
 * has one known shape, so no serialiser walks it and no string of the line is made.
 * `outcome` is one of four plain words.
 */
export function accessLineEncoder(bindings: string): LineEncoder<RequestSummary> {
  const bindingBytes = Buffer.from(bindings);
  const fixedBytes = LINE_FIXED_MAX_BYTES + bindingBytes.length;
  return {
    maxBytes: (s) =>
      fixedBytes +
      jsonStringMaxBytes(s.requestId) +
      jsonStringMaxBytes(s.method) +
      jsonStringMaxBytes(s.path) +
      jsonStringMaxBytes(s.surface) +
      jsonStringMaxBytes(s.client) +
      jsonStringMaxBytes(s.forwardedFor) +
      jsonStringMaxBytes(s.modelRequested) +
      jsonStringMaxBytes(s.model) +
      jsonStringMaxBytes(s.node),
    encode: (buf, at, s, timeMs) => {
      at = putAscii(buf, at, '{"level":"info","time":');
      at = putJsonNumber(buf, at, timeMs);
      at = putBytes(buf, at, bindingBytes);
      at = putJsonString(buf, putAscii(buf, at, ',"requestId":'), s.requestId);
      at = putJsonString(buf, putAscii(buf, at, ',"method":'), s.method);
      at = putJsonString(buf, putAscii(buf, at, ',"path":'), s.path);
      at = putJsonString(buf, putAscii(buf, at, ',"surface":'), s.surface);
      at = putJsonString(buf, putAscii(buf, at, ',"client":'), s.client);
      at = putJsonString(buf, putAscii(buf, at, ',"forwardedFor":'), s.forwardedFor);
      at = putJsonString(buf, putAscii(buf, at, ',"modelRequested":'), s.modelRequested);
      at = putJsonString(buf, putAscii(buf, at, ',"model":'), s.model);
      at = putJsonString(buf, putAscii(buf, at, ',"node":'), s.node);
      at = putJsonNumber(buf, putAscii(buf, at, ',"status":'), s.status);
      at = putAscii(buf, putAscii(buf, at, ',"outcome":"'), s.outcome);
      at = putAscii(buf, at, s.stream ? '","stream":true' : '","stream":false');
      at = putJsonNumber(buf, putAscii(buf, at, ',"attempts":'), s.attempts);
      at = putJsonNumber(buf, putAscii(buf, at, ',"failovers":'), s.failovers);
      at = putJsonNumber(buf, putAscii(buf, at, ',"queueWaitMs":'), s.queueWaitMs);
      at = putJsonNumber(buf, putAscii(buf, at, ',"ttftMs":'), s.ttftMs);
      at = putJsonNumber(buf, putAscii(buf, at, ',"durationMs":'), s.durationMs);
      at = putJsonNumber(buf, putAscii(buf, at, ',"promptTokens":'), s.promptTokens);
      at = putJsonNumber(buf, putAscii(buf, at, ',"completionTokens":'), s.completionTokens);
      return putAscii(
        buf,
        at,
        s.tokensEstimated ? ',"tokensEstimated":true,"msg":"request"}\n' : ',"tokensEstimated":false,"msg":"request"}\n',
      );
    },
  };
}

/** The line but its strings and bindings: keys, punctuation, booleans and the outcome (≤ 318 bytes), nine numbers. */
const LINE_FIXED_MAX_BYTES = 400 + 9 * JSON_NUMBER_MAX_BYTES;
