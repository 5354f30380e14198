import { Pool } from 'undici';
import {
  compareNodeIds,
  originOf,
  type CircuitInfo,
  type CircuitState,
  type Clock,
  type EngineLoadReading,
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
  /** The indexes below, rebuilt only when this changes (what routing reads of each node). */
  signature: string;
  /** Healthy nodes per model, sorted by id (the order strategies and resolution rely on). */
  healthyByModel: Map<string, NodeState[]>;
  /** Every model any node record lists, healthy or not. */
  knownModels: Set<string>;
  /** Lowercased model id -> the first id (in node order) that lowercases to it. */
  byLowerName: Map<string, string>;
  /** GET /v1/models, serialised once per snapshot. */
  modelsJson: string | null;
}

const EMPTY: Snapshot = {
  nodes: [],
  byId: new Map(),
  signature: '',
  healthyByModel: new Map(),
  knownModels: new Set(),
  byLowerName: new Map(),
  modelsJson: null,
};
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
  /** The engines' own load readings per node, fresh ones only (empty until the store's readings are read). */
  private engineLoads: Record<NodeId, EngineLoadReading> = {};
  /** Model id -> epoch seconds when this process first listed it (the `created` of /v1/models). */
  private readonly firstSeen = new Map<string, number>();
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
      this.snapshot = buildSnapshot(nodes, this.snapshot);
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

  /** The id a node record (healthy or not) lists for this name: itself, else its case-insensitive match. */
  knownModel(name: string): string | undefined {
    const { knownModels, byLowerName } = this.snapshot;
    return knownModels.has(name) ? name : byLowerName.get(name.toLowerCase());
  }

  /**
   * GET /v1/models: the union over healthy nodes, de-duplicated by id, in node order; built
   * once per fleet snapshot, so a fleet with many models costs nothing per call.
   */
  modelsJson(): string {
    const snapshot = this.snapshot;
    snapshot.modelsJson ??= JSON.stringify({ object: 'list', data: listModels(snapshot.nodes, this.firstSeen) });
    return snapshot.modelsJson;
  }

  /** One model's /v1/models entry, or undefined when no healthy node serves it. */
  modelEntry(id: string): ModelEntry | undefined {
    if (this.snapshot.healthyByModel.get(id) === undefined) return undefined;
    return listModels(this.snapshot.nodes, this.firstSeen).find((m) => m.id === id);
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

  /** What the node's engine last reported of its load (running, waiting, KV-cache use), when it reports any. */
  engineLoadOf(id: NodeId): EngineLoadReading | undefined {
    return this.engineLoads[id];
  }

  /** For the metrics' scrape-time gauges. */
  *nodeStates(): Iterable<{ node: NodeId; healthy: boolean; circuit: CircuitState }> {
    for (const n of this.snapshot.nodes) yield { node: n.node, healthy: n.healthy, circuit: this.circuit(n.node).state };
  }
}

/**
 * The indexes of a fleet. Rebuilt only when what routing reads of the nodes changed: a scan
 * rewrites every record (times, latency) every few seconds, but models, health and caps
 * rarely change, and a fleet of many nodes × many models is worth not re-indexing per refresh.
 */
function buildSnapshot(nodes: NodeState[], previous: Snapshot): Snapshot {
  const byId = new Map<NodeId, NodeState>();
  for (const node of nodes) byId.set(node.node, node);
  const signature = nodes
    .map((n) => `${n.node}\u0001${n.healthy}\u0001${n.maxconn}\u0001${n.kind}\u0001${n.models.join('\u0000')}`)
    .join('\u0002');
  if (signature === previous.signature) return { ...previous, nodes, byId };
  const healthyByModel = new Map<string, NodeState[]>();
  const knownModels = new Set<string>();
  const byLowerName = new Map<string, string>();
  for (const node of nodes) {
    for (const model of node.models) {
      knownModels.add(model);
      const lower = model.toLowerCase();
      if (!byLowerName.has(lower)) byLowerName.set(lower, model);
    }
    if (!node.healthy) continue;
    for (const model of new Set(node.models)) {
      const list = healthyByModel.get(model);
      if (list) list.push(node);
      else healthyByModel.set(model, [node]);
    }
  }
  return { nodes, byId, signature, healthyByModel, knownModels, byLowerName, modelsJson: null };
}

export interface ModelEntry {
  id: string;
  object: 'model';
  /** When this process first saw a node list the model (epoch seconds): stable across refreshes. */
  created: number;
  owned_by: string;
}

/** The union of models over healthy nodes, de-duplicated by id, in node-id order. */
function listModels(nodes: readonly NodeState[], firstSeen: Map<string, number>): ModelEntry[] {
  const seen = new Map<string, ModelEntry>();
  const now = Math.floor(Date.now() / 1000);
  for (const node of nodes) {
    if (!node.healthy) continue;
    for (const id of node.models) {
      if (seen.has(id)) continue;
      let created = firstSeen.get(id);
      if (created === undefined) {
        created = now;
        firstSeen.set(id, created);
      }
      seen.set(id, { id, object: 'model', created, owned_by: node.kind });
    }
  }
  return [...seen.values()];
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
