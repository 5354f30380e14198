import { Pool } from 'undici';
import {
  compareNodeIds,
  originOf,
  type CircuitInfo,
  type CircuitState,
  type Clock,
  type NodeId,
  type NodeState,
  type StateStore,
} from '@ai-lb/shared';

export interface FleetCacheOptions {
  /** Refresh period on top of fleet-change notifications (a missed pub/sub message heals within it). */
  refreshMs: number;
  clock: Clock;
  /** Called with the ids of every node record after a refresh changed that set (pools follow it). */
  onNodeSetChanged?: (nodes: ReadonlySet<NodeId>) => void;
  onError?: (error: unknown) => void;
}

interface Snapshot {
  /** Every unexpired node record, sorted by id. */
  nodes: NodeState[];
  byId: Map<NodeId, NodeState>;
  /** Healthy nodes per model, sorted by id (the order strategies and resolution rely on). */
  healthyByModel: Map<string, NodeState[]>;
  /** Every model any node record lists, healthy or not. */
  knownModels: Set<string>;
}

const EMPTY: Snapshot = { nodes: [], byId: new Map(), healthyByModel: new Map(), knownModels: new Set() };
const CLOSED: CircuitInfo = { state: 'closed', failures: 0, openUntilMs: 0 };
/** Weight of the newest sample in the latency average. */
const LATENCY_EWMA_ALPHA = 0.2;

/**
 * The gateway's in-process view of the fleet, so the hot path never lists nodes: refreshed
 * when any process announces a fleet change and every `refreshMs`, plus circuit and
 * in-flight snapshots for P2C, /v1/nodes and /v1/eligible_nodes. Routing decisions that
 * must be exact (caps, open circuits) are taken by the store's acquireSlot, not here.
 */
export class FleetCache {
  private snapshot: Snapshot = EMPTY;
  private circuits: Record<NodeId, CircuitInfo> = {};
  private inflight: Record<NodeId, number> = {};
  private readonly latencyEwma = new Map<NodeId, number>();
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  /** Whether the last refresh could read the store (health). */
  stateReadable = false;
  lastError: string | null = 'not refreshed yet';

  constructor(
    private readonly store: StateStore,
    private readonly options: FleetCacheOptions,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = this.store.onFleetChange(() => void this.refresh());
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs);
    this.timer.unref();
    await this.refresh();
  }

  stop(): void {
    clearInterval(this.timer);
    this.unsubscribe?.();
  }

  /** Resolves after a refresh that started after this call (tests rely on that). */
  refresh(): Promise<void> {
    if (this.running === null) {
      this.running = this.load().finally(() => (this.running = null));
      return this.running;
    }
    this.queued ??= this.running.then(() => {
      this.queued = null;
      return this.refresh();
    });
    return this.queued;
  }

  private async load(): Promise<void> {
    try {
      const nodes = (await this.store.listNodes()).sort((a, b) => compareNodeIds(a.node, b.node));
      const ids = nodes.map((n) => n.node);
      const [circuits, inflight] = await Promise.all([this.store.getCircuits(ids), this.store.getInflight(ids)]);
      const previous = this.snapshot.byId;
      this.snapshot = buildSnapshot(nodes);
      this.circuits = circuits;
      this.inflight = inflight;
      this.stateReadable = true;
      this.lastError = null;
      if (previous.size !== nodes.length || nodes.some((n) => !previous.has(n.node))) {
        for (const id of this.latencyEwma.keys()) if (!this.snapshot.byId.has(id)) this.latencyEwma.delete(id);
        this.options.onNodeSetChanged?.(new Set(ids));
      }
    } catch (error) {
      this.stateReadable = false;
      this.lastError = error instanceof Error ? error.message : String(error);
      this.options.onError?.(error);
    }
  }

  nodes(): readonly NodeState[] {
    return this.snapshot.nodes;
  }

  node(id: NodeId): NodeState | undefined {
    return this.snapshot.byId.get(id);
  }

  /** Healthy nodes that list `model`, sorted by id. */
  healthyNodesFor(model: string): readonly NodeState[] {
    return this.snapshot.healthyByModel.get(model) ?? [];
  }

  /** Some node record (healthy or not) lists exactly this id. */
  knowsModel(model: string): boolean {
    return this.snapshot.knownModels.has(model);
  }

  /** What model resolution needs per node, in node-id order. */
  modelViews(): Array<{ models: readonly string[]; healthy: boolean; eligible: boolean }> {
    return this.snapshot.nodes.map((n) => ({ models: n.models, healthy: n.healthy, eligible: this.isEligible(n) }));
  }

  healthyCount(): number {
    let count = 0;
    for (const n of this.snapshot.nodes) if (n.healthy) count++;
    return count;
  }

  circuit(id: NodeId): CircuitInfo {
    const info = this.circuits[id];
    if (info === undefined) return CLOSED;
    // The cached record ages: an open circuit whose time passed is half-open now.
    if (info.state === 'open' && info.openUntilMs <= this.options.clock()) return { ...info, state: 'half_open' };
    return info;
  }

  inflightOf(id: NodeId): number {
    return this.inflight[id] ?? 0;
  }

  /** acquireSlot returns live counts for free: keep them, they are fresher than the last refresh. */
  noteInflight(counts: Record<NodeId, number>): void {
    Object.assign(this.inflight, counts);
  }

  /** Healthy, circuit not open, below its cap — as far as this cache knows. */
  isEligible(node: NodeState): boolean {
    if (!node.healthy) return false;
    if (this.circuit(node.node).state === 'open') return false;
    return node.maxconn === 0 || this.inflightOf(node.node) < node.maxconn;
  }

  noteReleased(id: NodeId): void {
    const count = this.inflight[id];
    if (count !== undefined && count > 0) this.inflight[id] = count - 1;
  }

  recordLatency(id: NodeId, ms: number): void {
    const previous = this.latencyEwma.get(id);
    this.latencyEwma.set(id, previous === undefined ? ms : previous + LATENCY_EWMA_ALPHA * (ms - previous));
  }

  /** Observed upstream latency when there is some, else the monitor's probe latency. */
  latencyOf(node: NodeState): number | null {
    return this.latencyEwma.get(node.node) ?? node.latencyMs;
  }

  observedLatency(id: NodeId): number | null {
    return this.latencyEwma.get(id) ?? null;
  }

  /** For the metrics' scrape-time gauges. */
  *nodeStates(): Iterable<{ node: NodeId; healthy: boolean; circuit: CircuitState }> {
    for (const n of this.snapshot.nodes) yield { node: n.node, healthy: n.healthy, circuit: this.circuit(n.node).state };
  }
}

function buildSnapshot(nodes: NodeState[]): Snapshot {
  const byId = new Map<NodeId, NodeState>();
  const healthyByModel = new Map<string, NodeState[]>();
  const knownModels = new Set<string>();
  for (const node of nodes) {
    byId.set(node.node, node);
    for (const model of node.models) knownModels.add(model);
    if (!node.healthy) continue;
    for (const model of new Set(node.models)) {
      const list = healthyByModel.get(model);
      if (list) list.push(node);
      else healthyByModel.set(model, [node]);
    }
  }
  return { nodes, byId, healthyByModel, knownModels };
}

export interface UpstreamPoolOptions {
  connectTimeoutMs: number;
}

/**
 * One keep-alive undici Pool per node, created on first use and closed when the node
 * leaves the fleet. Pools are only ever made from fleet records (host/port the monitor
 * recorded), so no client input can make the gateway dial an arbitrary address.
 */
export class UpstreamPools {
  private readonly pools = new Map<NodeId, Pool>();

  constructor(private readonly options: UpstreamPoolOptions) {}

  get(node: NodeState): Pool {
    let pool = this.pools.get(node.node);
    if (pool === undefined) {
      pool = new Pool(originOf(node), {
        connectTimeout: this.options.connectTimeoutMs,
        // The gateway runs its own head/idle timers (REQUEST_TIMEOUT_SECS, STREAM_IDLE_TIMEOUT_SECS);
        // undici's must never fire first with a different meaning.
        headersTimeout: 0,
        bodyTimeout: 0,
        keepAliveTimeout: 30_000,
      });
      this.pools.set(node.node, pool);
    }
    return pool;
  }

  /** Pools open now (one per node that was sent a request and is still in the fleet). */
  get size(): number {
    return this.pools.size;
  }

  /** Closes the pools of nodes no longer in the fleet; their in-flight requests finish first. */
  retain(nodes: ReadonlySet<NodeId>): void {
    for (const [id, pool] of this.pools) {
      if (nodes.has(id)) continue;
      this.pools.delete(id);
      void pool.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy().catch(() => undefined)));
  }
}
