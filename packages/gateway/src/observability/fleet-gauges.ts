/**
 * The gateway's gauges that are read, not counted: each one asks its source at scrape
 * time (the fleet cache, the store's health, the queue), so none costs anything per
 * request. Plus Node.js's own process metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, type Registry } from 'prom-client';
import type { CircuitState, NodeId, StateStore } from '@ai-lb/shared';

/** What a node's engine last said about its load (the monitor's reading, through the fleet cache). */
export interface EngineLoadView {
  running: number | null;
  waiting: number | null;
  kvCacheUsage: number | null;
}

/** What the gauges read of the fleet cache (FleetCache fits). */
export interface FleetGaugeSource {
  nodeStates(): Iterable<{ node: NodeId; healthy: boolean; circuit: CircuitState }>;
  engineLoadOf(node: NodeId): EngineLoadView | undefined;
  /** Whether a monitor holds the lease, and how many records are past their TTL (as of the last refresh). */
  monitorStatus(): { monitor: unknown; staleNodes: number };
}

export interface GaugeSources {
  fleet: FleetGaugeSource;
  store: Pick<StateStore, 'health'>;
  /** This process's waiting requests (QUEUE_TIMEOUT_MS). */
  queue: { readonly size: number };
  /** Slots this process holds idle in capped nodes' reserves (SlotLeases). */
  reserves?: { idleOf(node: NodeId): number };
}

const CIRCUIT_VALUE: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };

/**
 * prom-client's default Node.js metrics name three gauges `*_total`, a suffix Prometheus
 * reserves for counters (`promtool check metrics` rejects them). Their information is in
 * ai_lb_nodejs_active_handles / _requests / _resources already, by type.
 */
const MISNAMED_DEFAULT_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Registers every scrape-time gauge on `registry`; `sources()` is undefined until the gateway has built them. */
export function registerFleetGauges(registry: Registry, sources: () => GaugeSources | undefined, prefix: string): void {
  const registers = [registry];
  const perNode = (name: string, help: string, read: (node: NodeId, healthy: boolean, circuit: CircuitState) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['node'] as const,
      registers,
      collect() {
        this.reset();
        for (const n of sources()?.fleet.nodeStates() ?? []) {
          const value = read(n.node, n.healthy, n.circuit);
          if (value !== null) this.set({ node: n.node }, value);
        }
      },
    });
  const engine = (node: NodeId) => sources()?.fleet.engineLoadOf(node);
  perNode(`${prefix}node_up`, '1 when the monitor last saw the node healthy, 0 otherwise', (_, healthy) => (healthy ? 1 : 0));
  perNode(
    `${prefix}reserved_idle_slots`,
    'Slots of a capped node this replica leased ahead and holds unused: counted in the node’s in-flight in Redis, not running',
    (node) => sources()?.reserves?.idleOf(node) ?? 0,
  );
  perNode(`${prefix}circuit_state`, 'Circuit breaker per node: 0 closed, 1 half-open, 2 open', (_, __, circuit) => CIRCUIT_VALUE[circuit]);
  perNode(
    `${prefix}engine_requests_running`,
    'Requests the node’s engine reports running now, from every client (absent when the engine does not say)',
    (node) => finite(engine(node)?.running),
  );
  perNode(`${prefix}engine_requests_waiting`, 'Requests queued inside the node’s engine (absent when the engine does not say)', (node) =>
    finite(engine(node)?.waiting),
  );
  perNode(
    `${prefix}engine_kv_cache_usage_ratio`,
    'KV-cache use the node’s engine reports, 0 to 1 (absent when the engine does not say)',
    (node) => finite(engine(node)?.kvCacheUsage),
  );

  new Gauge({
    name: `${prefix}state_store_degraded`,
    help: '1 while Redis is unreachable and this replica serves on its last fleet and local capacity accounting',
    registers,
    collect() {
      this.set(sources()?.store.health().degraded === true ? 1 : 0);
    },
  });
  new Counter({
    name: `${prefix}state_store_errors_total`,
    help: 'State store calls that failed because Redis was unreachable (each then fell back to local state)',
    registers,
    collect() {
      this.reset();
      this.inc(sources()?.store.health().remoteFailures ?? 0);
    },
  });
  new Gauge({
    name: `${prefix}queue_length`,
    help: 'Requests this process has waiting for a free slot (QUEUE_TIMEOUT_MS > 0)',
    registers,
    collect() {
      this.set(sources()?.queue.size ?? 0);
    },
  });

  new Gauge({
    name: `${prefix}monitor_up`,
    help: '1 while a monitor holds the lease (is scanning), as of the last fleet refresh',
    registers,
    collect() {
      this.set(sources()?.fleet.monitorStatus().monitor ? 1 : 0);
    },
  });
  new Gauge({
    name: `${prefix}fleet_stale_nodes`,
    help: 'Node records past NODE_TTL_SECS that no monitor refreshed, still routed (circuit breakers judge them)',
    registers,
    collect() {
      this.set(sources()?.fleet.monitorStatus().staleNodes ?? 0);
    },
  });

  collectDefaultMetrics({ register: registry, prefix });
  for (const name of MISNAMED_DEFAULT_GAUGES) registry.removeSingleMetric(prefix + name);
}

function finite(value: number | null | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
