import { Pool } from 'undici';
import {
  DEFAULT_NODE_PRIORITY,
  engineLoadMaxAgeMs,
  freshEngineLoads,
  originOf,
  type ApiSurface,
  type CircuitInfo,
  type CircuitState,
  type Clock,
  type EngineLoadReading,
  type NodeId,
  type NodeState,
  type StateStore,
} from '@ai-lb/shared';
import {
  isAuthoritative,
  ListedRecords,
  monitorStatusOf,
  NO_MONITOR,
  routeInfoOf,
  storeNowOf,
  type MonitorStatus,
  type MonitorView,
  type RouteInfo,
} from './fleet-refresh.ts';
import { AffinityHomes } from './cache-affinity.ts';
import { buildSnapshot, EMPTY_SNAPSHOT, listModels, type FleetRecord, type ModelEntry, type Snapshot } from './fleet-snapshot.ts';
import { HashRingCache } from './hash-ring.ts';
import { aliasesOfNode, type ModelAliases } from './model-aliases.ts';
import type { RoutingCandidate } from './routing-rules.ts';

export type { ModelEntry } from './fleet-snapshot.ts';
export type { MonitorStatus } from './fleet-refresh.ts';

export interface FleetCacheOptions {
  /** Refresh period on top of fleet-change notifications (a missed pub/sub message heals within it). */
  refreshMs: number;
  clock: Clock;
  /** LOAD_POLL_MS: engine readings are read with every refresh and trusted for 3 intervals; 0 = not read. */
  loadPollMs?: number;
  /** FLEET_STALE_LIMIT_SECS: how long a record the store lost without a scan passing it over is kept. */
  staleLimitMs?: number;
  /** MODEL_ALIASES. */
  aliases?: ModelAliases;
  /** NODE_PRIORITY (lowercased node ids). */
  priorities?: ReadonlyMap<string, number>;
  /** Called with the ids of every node record after a refresh changed that set (pools follow it). */
  onNodeSetChanged?: (nodes: ReadonlySet<NodeId>) => void;
  onError?: (error: unknown) => void;
}

const NO_SURFACES: ReadonlySet<ApiSurface> = new Set();

const CLOSED: CircuitInfo = { state: 'closed', failures: 0, openUntilMs: 0 };
/** Weight of the newest sample in the latency average. */
const LATENCY_EWMA_ALPHA = 0.2;

/**
 * The gateway's in-process view of the fleet, so the hot path never lists nodes: refreshed
 * when any process announces a fleet change and every `refreshMs` (node records with their
 * freshness, circuits, in-flight counts and engine load readings, one read each), plus what
 * P2C, /v1/nodes and /v1/eligible_nodes need. Routing decisions that must be exact (caps,
 * open circuits) are taken by the store's acquireSlot, not here.
 *
 * Stale records (no monitor refreshed them) are routed like fresh ones: the circuit breaker
 * judges which servers are really up. Records a store lost with its scan history (Redis
 * restarted empty) are kept, stale, for the rest of their keep time (fleet-refresh.ts).
 */
export class FleetCache {
  private snapshot: Snapshot = EMPTY_SNAPSHOT;
  private circuits: Record<NodeId, CircuitInfo> = {};
  private inflight: Record<NodeId, number> = {};
  private notAttempts: ((id: NodeId) => number) | null = null;
  private route = new Map<NodeId, RouteInfo>();
  private view: MonitorView = NO_MONITOR;
  private readonly listed: ListedRecords;
  private readonly latencyEwma = new Map<NodeId, number>();
  /** The engines' own load readings per node, fresh ones only (empty until the store's readings are read). */
  private engineLoads: Record<NodeId, EngineLoadReading> = {};
  /**
   * Nodes this process sent a model their engine did not have loaded, since their last
   * reading: the model the engine is loading now, and when it was sent (noteModelSent).
   */
  private readonly loadsSent = new Map<NodeId, { model: string; at: number }>();
  /** Model id -> epoch seconds when this process first listed it (the `created` of /v1/models). */
  private readonly firstSeen = new Map<string, number>();
  private readonly aliases: ModelAliases;
  /** CACHE_AFFINITY's rings, one per candidate set. */
  readonly rings = new HashRingCache();
  /** CACHE_AFFINITY: where this process last sent each recent key. */
  readonly affinityHomes = new AffinityHomes();
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
  ) {
    this.aliases = options.aliases ?? new Map();
    this.listed = new ListedRecords(options.staleLimitMs ?? 0);
  }

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
      const fleet = await this.store.listFleet();
      const now = this.options.clock();
      const records = this.listed.withLost(fleet, now);
      const ids = records.map((r) => r.state.node);
      const [circuits, inflight, loads] = await Promise.all([
        this.store.getCircuits(ids),
        this.store.getInflight(ids),
        this.readLoads(ids),
      ]);
      const previous = this.snapshot.records;
      this.snapshot = buildSnapshot(records, this.snapshot, this.aliases);
      this.circuits = circuits;
      if (this.notAttempts !== null) for (const id of ids) inflight[id] -= this.notAttempts(id);
      this.inflight = inflight;
      this.route = routeInfoOf(
        records,
        { inflight, loads },
        { priorities: this.options.priorities ?? new Map(), loadPollMs: this.options.loadPollMs ?? 0, now },
      );
      this.view = { monitor: fleet.monitor, lastScan: fleet.lastScan, storeNowMs: fleet.nowMs, readAtMs: now };
      for (const [id, sent] of this.loadsSent) {
        const readAt = this.route.get(id)?.engine?.at ?? Number.NEGATIVE_INFINITY;
        if (readAt >= sent.at || !this.loadSentApplies(sent, now)) this.loadsSent.delete(id);
      }
      this.stateReadable = true;
      this.lastError = null;
      if (previous.size !== ids.length || ids.some((id) => !previous.has(id))) {
        for (const id of this.latencyEwma.keys()) if (!this.snapshot.records.has(id)) this.latencyEwma.delete(id);
        this.options.onNodeSetChanged?.(new Set(ids));
      }
    } catch (error) {
      this.stateReadable = false;
      this.lastError = error instanceof Error ? error.message : String(error);
      this.options.onError?.(error);
    }
  }

  private async readLoads(ids: readonly NodeId[]): Promise<Record<NodeId, EngineLoadReading>> {
    const pollMs = this.options.loadPollMs ?? 0;
    if (pollMs <= 0 || ids.length === 0) return {};
    try {
      return freshEngineLoads(await this.store.getEngineLoads(ids), this.options.clock(), engineLoadMaxAgeMs(pollMs));
    } catch (error) {
      // Readings only reorder candidates: without them the gateway routes on its own counts.
      this.options.onError?.(error);
      return {};
    }
  }

  nodes(): readonly NodeState[] {
    return this.snapshot.nodes;
  }

  node(id: NodeId): NodeState | undefined {
    return this.snapshot.records.get(id)?.state;
  }

  /** A node's record with its freshness. */
  record(id: NodeId): FleetRecord | undefined {
    return this.snapshot.records.get(id);
  }

  /** How long a stale record has been past its TTL (store clock, moved on by the local time since the read); null when fresh. */
  staleForMs(id: NodeId): number | null {
    const record = this.snapshot.records.get(id);
    if (record === undefined || record.freshness === 'fresh') return null;
    return Math.max(0, storeNowOf(this.view, this.options.clock()) - record.freshUntilMs);
  }

  /** NODE_PRIORITY of a node (lower first). */
  priorityOf(id: NodeId): number {
    return this.route.get(id)?.priority ?? DEFAULT_NODE_PRIORITY;
  }

  /** The node's engine load reading as of the last refresh (fresh then), if any. */
  engineLoad(id: NodeId): EngineLoadReading | null {
    return this.route.get(id)?.engine ?? null;
  }

  /** Healthy nodes that list `model` (or, for an alias, one of its ids), sorted by id. */
  healthyNodesFor(model: string): readonly NodeState[] {
    return this.snapshot.healthyByModel.get(model) ?? [];
  }

  /** The API surfaces a node serves natively (records without them: what ai-lb routed before surfaces were probed). */
  surfacesOf(id: NodeId): ReadonlySet<ApiSurface> {
    return this.snapshot.surfacesById.get(id) ?? NO_SURFACES;
  }

  /** The id a node record (healthy or not) lists for this name, or an alias some node serves: itself, else its case-insensitive match. */
  knownModel(name: string): string | undefined {
    const { knownModels, byLowerName } = this.snapshot;
    return knownModels.has(name) ? name : byLowerName.get(name.toLowerCase());
  }

  /** The model id node `id` is sent for a request resolved to `model`: an alias's id on that node, else `model`. */
  modelFor(model: string, id: NodeId): string {
    return this.snapshot.aliasIds.get(model)?.get(id) ?? model;
  }

  /** A MODEL_ALIASES name some node record serves (by one of its ids or by the name itself). */
  isServedAlias(name: string): boolean {
    return this.snapshot.aliasIds.has(name);
  }

  /** The MODEL_ALIASES names a node answers to (/v1/nodes). */
  aliasesOf(node: NodeState): string[] {
    return this.aliases.size === 0 ? [] : aliasesOfNode(this.aliases, node.models);
  }

  /**
   * GET /v1/models: the union over healthy nodes, de-duplicated by id, in node order, then
   * the served aliases; built once per fleet snapshot, so a fleet with many models costs
   * nothing per call.
   */
  modelsJson(): string {
    const snapshot = this.snapshot;
    snapshot.modelsJson ??= JSON.stringify({ object: 'list', data: listModels(snapshot, this.firstSeen) });
    return snapshot.modelsJson;
  }

  /** When this process first saw a node list the model (epoch ms; now for a model never listed). */
  firstSeenMs(id: string): number {
    const seconds = this.firstSeen.get(id);
    if (seconds !== undefined) return seconds * 1000;
    const now = Math.floor(Date.now() / 1000);
    this.firstSeen.set(id, now);
    return now * 1000;
  }

  /** One model's /v1/models entry, or undefined when no healthy node serves it. */
  modelEntry(id: string): ModelEntry | undefined {
    if (this.snapshot.healthyByModel.get(id) === undefined) return undefined;
    return listModels(this.snapshot, this.firstSeen).find((m) => m.id === id);
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

  /** The monitor and the fleet's freshness, as of the last refresh. */
  monitorStatus(): MonitorStatus {
    return monitorStatusOf(this.view, this.snapshot.records.values(), this.options.clock());
  }

  /** Whether a model no node lists is unknown (404) rather than maybe not seen yet (fleet-refresh.ts). */
  isAuthoritative(): boolean {
    return isAuthoritative(this.view, this.snapshot.nodes.length);
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

  /**
   * The candidates of one request for `model` as the routing strategies see them: each
   * node's in-flight count, engine reading, whether it has the model (its own id for an
   * alias) loaded, NODE_PRIORITY, latency, failures and the store hints. Built from what
   * the last refresh computed; nothing here asks the store.
   */
  routingCandidates(ids: readonly NodeId[], model: string): RoutingCandidate[] {
    const out: RoutingCandidate[] = [];
    const aliasIds = this.snapshot.aliasIds.get(model);
    for (const id of ids) {
      const node = this.snapshot.records.get(id)?.state;
      const route = this.route.get(id);
      if (node === undefined || route === undefined) continue;
      const served = aliasIds?.get(id) ?? model;
      out.push({
        node: id,
        maxconn: node.maxconn,
        slots: route.slots,
        inflight: this.inflightOf(id),
        engine: route.engine,
        warm: this.warmOf(id, route, served),
        priority: route.priority,
        latencyMs: this.latencyOf(node),
        failures: this.circuit(id).failures,
        hints: route.hints,
      });
    }
    return out;
  }

  /**
   * Whether the node's engine has `served` loaded: its last reading says, unless this process
   * has since sent it a model it did not have — then the engine is loading that one (and may
   * be evicting the others to make room), which the reading cannot show yet. Without this,
   * requests for the evicted model keep going to the node for up to a poll interval and a
   * refresh, each one loading its model back.
   */
  private warmOf(id: NodeId, route: RouteInfo, served: string): boolean | null {
    if (route.loaded === null) return null;
    if (this.loadsSent.size > 0) {
      const sent = this.loadsSent.get(id);
      if (sent !== undefined && this.loadSentApplies(sent, this.options.clock())) return sent.model === served;
    }
    return route.loaded.has(served);
  }

  /** A load this process caused stops mattering after as long as a reading is trusted, with or without a newer reading. */
  private loadSentApplies(sent: { at: number }, now: number): boolean {
    return now - sent.at < engineLoadMaxAgeMs(this.options.loadPollMs ?? 0);
  }

  /**
   * An attempt for `model` (the request's name: an alias is mapped to the node's id) went to
   * the node. If the engine did not have it loaded as routing saw it, the node counts as
   * loading it — warm for it, cold for every other model — until a reading taken since.
   */
  noteModelSent(id: NodeId, model: string): void {
    const route = this.route.get(id);
    if (route === undefined || route.loaded === null) return;
    const served = this.modelFor(model, id);
    if (this.warmOf(id, route, served) === false) this.loadsSent.set(id, { model: served, at: this.options.clock() });
  }

  /**
   * Leases of this process the store counts that are not attempts (the idle slots of its
   * reserves): taken off the counts each refresh reads, so in flight means attempts.
   */
  countAttemptsOnly(notAttempts: (id: NodeId) => number): void {
    this.notAttempts = notAttempts;
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

  /** An attempt of this process went to the node (placed without a lease, or on an uncapped one). */
  noteAcquired(id: NodeId): void {
    this.inflight[id] = (this.inflight[id] ?? 0) + 1;
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
