import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CircuitState, NodeId } from '@ai-lb/shared';
import { FastCounter, FastGauge, FastHistogram } from './fast-metrics.ts';

/** What the metrics read from the fleet cache at scrape time (no work on the hot path). */
export interface FleetMetricsSource {
  nodeStates(): Iterable<{ node: NodeId; healthy: boolean; circuit: CircuitState }>;
}

/** What the metrics read from the state store at scrape time (the ResilientStateStore has both; others have neither). */
export interface StoreMetricsSource {
  readonly degraded?: boolean;
  readonly remoteFailures?: number;
}

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

  // The four updated on every request: fast-metrics.ts (issue 6).
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
    collectDefaultMetrics({ register: this.registry, prefix: 'ai_lb_' });
  }

  /** Issue 4 (replicas behind one Redis): Redis trouble and the capacity queue, read at scrape time. */
  private registerStoreAndQueueGauges(): void {
    const metrics = this;
    new Gauge({
      name: 'ai_lb_state_store_degraded',
      help: '1 while Redis is unreachable and this replica serves on its last fleet and local capacity accounting',
      registers: [this.registry],
      collect() {
        this.set(metrics.store?.degraded === true ? 1 : 0);
      },
    });
    new Counter({
      name: 'ai_lb_state_store_errors_total',
      help: 'State store calls that failed because Redis was unreachable (each then fell back to local state)',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(metrics.store?.remoteFailures ?? 0);
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

  /** The state store and the wait queue are created with the metrics; createGateway registers them. */
  watchStore(store: object): void {
    this.store = store as StoreMetricsSource;
  }

  watchQueue(queue: { readonly size: number }): void {
    this.queue = queue;
  }

  /** The fleet cache is created after the metrics; it registers itself here. */
  watchFleet(source: FleetMetricsSource): void {
    this.fleet = source;
  }
}
