import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { performance } from 'node:perf_hooks';
import type { Exchange } from './http/exchange.ts';
import type { CircuitState, NodeId, StateStore } from '@ai-lb/shared';

/**
 * The metrics updated on every request, as prom-client custom metrics. prom-client resolves
 * a label set on every call — it validates each label, sorts the label names and joins them
 * into a hash — several % of the gateway's busy time at a few calls per request. Here a
 * label set is found by its values joined in a fixed order, one Map lookup. The registry
 * renders these exactly as it renders its own Counter/Gauge/Histogram (the same `get()`
 * shape), so /metrics reads the same (metrics.test.ts compares the text).
 */
abstract class FastMetric<L extends string, C> {
  protected readonly children = new Map<string, C>();

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
    let key = '';
    for (const name of this.labelNames) key += `${labels[name]}\u0000`;
    let child = this.children.get(key);
    if (child === undefined) {
      child = this.create({ ...labels });
      this.children.set(key, child);
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
    this.children.clear();
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
    return [...this.children.values()].map(({ labels, value }) => ({ labels, value }));
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

  /** The child for a label set: hold it and change its value (no lookup per change). */
  labels(labels: Record<L, string>): { value: number } {
    return this.child(labels);
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
    for (const { labels, counts, sum, count } of this.children.values()) {
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

/** What the metrics read from the fleet cache at scrape time (no work on the hot path). */
export interface FleetMetricsSource {
  nodeStates(): Iterable<{ node: NodeId; healthy: boolean; circuit: CircuitState }>;
  monitorStatus(): { monitor: unknown; staleNodes: number };
}

/** What the metrics read from the state store at scrape time. */
export type StoreMetricsSource = Pick<StateStore, 'health'>;

const CIRCUIT_VALUE: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };

/**
 * Every metric of the gateway, on its own Registry (tests create many gateways in one
 * process; the global registry would collide). Label values are bounded: `model` and
 * `node` only ever take values from the fleet state (or "none"), `route`, `status`,
 * `reason` come from fixed sets — never from raw request input.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private fleet: FleetMetricsSource | undefined;
  private store: StoreMetricsSource | undefined;
  private queue: { readonly size: number } | undefined;

  // The four updated on every request: the Fast* metrics below.
  readonly requests = new FastCounter(this.registry, {
    name: 'ai_lb_requests_total',
    help: 'Requests answered, by route, resolved model, node that answered and HTTP status',
    labelNames: ['route', 'model', 'node', 'status'] as const,
  });

  readonly requestDuration = new FastHistogram(this.registry, {
    name: 'ai_lb_request_duration_seconds',
    help: 'Time from request start to the end of the response (streams: to their end)',
    labelNames: ['route', 'stream'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
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

  readonly capacityRejections = new Counter({
    name: 'ai_lb_capacity_rejections_total',
    help: 'Requests answered 429 because every eligible node was at its cap',
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

  constructor() {
    const metrics = this;
    new Gauge({
      name: 'ai_lb_node_up',
      help: '1 when the monitor last saw the node healthy, 0 otherwise',
      labelNames: ['node'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const n of metrics.fleet?.nodeStates() ?? []) this.set({ node: n.node }, n.healthy ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ai_lb_circuit_state',
      help: 'Circuit breaker per node: 0 closed, 1 half-open, 2 open',
      labelNames: ['node'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const n of metrics.fleet?.nodeStates() ?? []) this.set({ node: n.node }, CIRCUIT_VALUE[n.circuit]);
      },
    });
    this.registerStoreAndQueueGauges();
    this.registerMonitorGauges();
    collectDefaultMetrics({ register: this.registry, prefix: 'ai_lb_' });
  }

  /** Redis trouble and the capacity queue, read at scrape time. */
  private registerStoreAndQueueGauges(): void {
    const metrics = this;
    new Gauge({
      name: 'ai_lb_state_store_degraded',
      help: '1 while Redis is unreachable and this replica serves on its last fleet and local capacity accounting',
      registers: [this.registry],
      collect() {
        this.set(metrics.store?.health().degraded === true ? 1 : 0);
      },
    });
    new Counter({
      name: 'ai_lb_state_store_errors_total',
      help: 'State store calls that failed because Redis was unreachable (each then fell back to local state)',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(metrics.store?.health().remoteFailures ?? 0);
      },
    });
    new Gauge({
      name: 'ai_lb_queue_length',
      help: 'Requests this process has waiting for a free slot (QUEUE_TIMEOUT_MS > 0)',
      registers: [this.registry],
      collect() {
        this.set(metrics.queue?.size ?? 0);
      },
    });
  }

  /** Whether a monitor is scanning, and how much of the fleet is stale (the gateway serves it anyway). */
  private registerMonitorGauges(): void {
    const metrics = this;
    new Gauge({
      name: 'ai_lb_monitor_up',
      help: '1 while a monitor holds the lease (is scanning), as of the last fleet refresh',
      registers: [this.registry],
      collect() {
        this.set(metrics.fleet?.monitorStatus().monitor ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ai_lb_fleet_stale_nodes',
      help: 'Node records past NODE_TTL_SECS that no monitor refreshed, still routed (circuit breakers judge them)',
      registers: [this.registry],
      collect() {
        this.set(metrics.fleet?.monitorStatus().staleNodes ?? 0);
      },
    });
  }

  /** One routed request ended (the router's onFinished): its count and duration. */
  recordRequest(exchange: Exchange): void {
    const { res } = exchange;
    const route = exchange.surface ?? 'other';
    this.requests.inc({
      route,
      model: exchange.model ?? 'none',
      node: exchange.node ?? 'none',
      status: !res.writableFinished ? 'aborted' : exchange.streamBroken ? 'stream_error' : String(res.statusCode),
    });
    this.requestDuration.observe(
      { route, stream: exchange.eventStream ? 'true' : 'false' },
      (performance.now() - exchange.startedAt) / 1000,
    );
  }

  /** What the scrape-time gauges read; the sources are built after the metrics (createGateway). */
  watch(sources: { fleet: FleetMetricsSource; store: StoreMetricsSource; queue: { readonly size: number } }): void {
    this.fleet = sources.fleet;
    this.store = sources.store;
    this.queue = sources.queue;
  }
}
