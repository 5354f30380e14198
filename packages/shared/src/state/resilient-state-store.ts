import type { EngineLoadReading } from '../engine-load.ts';
import { GatewayError } from '../errors.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { compareNodeIds } from '../node-id.ts';
import { systemClock, type CircuitInfo, type Clock, type NodeId, type NodeState } from '../types.ts';
import { MemoryStateStore } from './memory-state-store.ts';
import type {
  AcquireSlotRequest,
  AcquireSlotResult,
  FleetSnapshot,
  InflightReport,
  LeaseRef,
  MonitorLease,
  NodeOutcomes,
  PutNodeOptions,
  QueueTicketRef,
  ReleaseSlotRequest,
  ReserveSlotsRequest,
  ReserveSlotsResult,
  StateStore,
  StateStoreHealth,
} from './state-store.ts';

export interface ResilientStateStoreOptions {
  /** The shared store, normally a RedisStateStore. Closed by close(). */
  remote: StateStore;
  /** While degraded, how often to ask whether Redis is back. */
  recheckMs?: number;
  /** For the local accounting store. */
  clock?: Clock;
  log?: Logger;
}

/**
 * "Redis trouble": keeps a replica serving while Redis is unreachable.
 *
 * Normally every call goes to `remote`. When one fails with `state_unavailable` the store
 * turns `degraded`: the fleet is served from the last listNodes it read, and capacity,
 * circuit breaker, rotation and sticky sessions are accounted in a local MemoryStateStore,
 * (the fleet ages on the local clock — fresh records turn stale, none is dropped: with no
 * completed scan to be seen, nothing says a server is gone),
 * per replica. A timer asks Redis every `recheckMs`; once it answers, calls go back to it.
 * A lease remembers where it was taken: local leases are renewed and released locally even
 * after Redis is back; remote leases whose release fails simply expire in Redis.
 * What is lost while degraded is listed in the README ("When Redis is unreachable").
 */
export class ResilientStateStore implements StateStore {
  readonly kind = 'redis' as const;
  private readonly remote: StateStore;
  private readonly local: MemoryStateStore;
  private readonly recheckMs: number;
  private readonly log: Logger;
  private fleet: FleetSnapshot | undefined;
  /** Local clock when `fleet` was read: while degraded it ages by the time since. */
  private fleetReadAt = 0;
  private readonly clock: Clock;
  private readonly localLeases = new Set<string>();
  private readonly fleetListeners = new Set<() => void>();
  private readonly unsubscribeRemote: (() => void)[];
  private recheckTimer: NodeJS.Timeout | undefined;
  private isDegraded = false;
  private whyDegraded: string | null = null;
  private failures = 0;
  private closed = false;

  constructor(options: ResilientStateStoreOptions) {
    this.remote = options.remote;
    this.clock = options.clock ?? systemClock;
    this.local = new MemoryStateStore({ clock: this.clock });
    this.recheckMs = options.recheckMs ?? 1000;
    this.log = options.log ?? silentLogger;
    // The local store announces circuits it opened while degraded.
    this.unsubscribeRemote = [this.remote.onFleetChange(() => this.fleetChanged()), this.local.onFleetChange(() => this.fleetChanged())];
  }

  /** Degraded while Redis is unreachable and this replica runs on its own. */
  health(): StateStoreHealth {
    return { degraded: this.isDegraded, reason: this.whyDegraded, remoteFailures: this.failures };
  }

  async putNode(state: NodeState, ttlMs: number, options?: PutNodeOptions): Promise<void> {
    // Locally, an in-process monitor's writes still reach this replica's readers.
    await this.either(
      () => this.remote.putNode(state, ttlMs, options),
      () => this.putLocally(state, ttlMs, options?.scan ?? 0),
    );
  }

  async markNodeUnhealthy(node: NodeId, error: string, checkedAtMs: number): Promise<void> {
    await this.either(
      () => this.remote.markNodeUnhealthy(node, error, checkedAtMs),
      () => this.markLocally(node, error, checkedAtMs),
    );
  }

  async listNodes(): Promise<NodeState[]> {
    return (await this.listFleet()).nodes.map((n) => n.state);
  }

  async listFleet(): Promise<FleetSnapshot> {
    return this.either(
      async () => {
        this.keepFleet(await this.remote.listFleet());
        return structuredClone(this.fleet!);
      },
      async () => structuredClone(this.agedFleet()),
    );
  }

  async claimMonitorLease(monitorId: string, leaseMs: number): Promise<MonitorLease> {
    return this.either(
      () => this.remote.claimMonitorLease(monitorId, leaseMs),
      () => this.local.claimMonitorLease(monitorId, leaseMs),
    );
  }

  async releaseMonitorLease(monitorId: string): Promise<void> {
    await Promise.all([
      this.local.releaseMonitorLease(monitorId),
      this.either(
        () => this.remote.releaseMonitorLease(monitorId),
        async () => undefined,
      ),
    ]);
  }

  async beginScan(): Promise<number> {
    return this.either(
      () => this.remote.beginScan(),
      () => this.local.beginScan(),
    );
  }

  async completeScan(scan: number, monitorId: string): Promise<void> {
    await this.either(
      () => this.remote.completeScan(scan, monitorId),
      () => this.local.completeScan(scan, monitorId),
    );
  }

  onFleetChange(listener: () => void): () => void {
    this.fleetListeners.add(listener);
    return () => this.fleetListeners.delete(listener);
  }

  /** Locally too, so this replica still routes its own follow-ups while Redis is away. */
  async putResponseOwner(responseId: string, node: NodeId, ttlMs: number): Promise<void> {
    await this.local.putResponseOwner(responseId, node, ttlMs);
    await this.either(
      () => this.remote.putResponseOwner(responseId, node, ttlMs),
      async () => undefined,
    );
  }

  async getResponseOwner(responseId: string): Promise<NodeId | null> {
    return this.either(
      async () => (await this.remote.getResponseOwner(responseId)) ?? this.local.getResponseOwner(responseId),
      () => this.local.getResponseOwner(responseId),
    );
  }

  /** Locally too: an in-process monitor's readings still reach this replica while Redis is away. */
  async putEngineLoads(readings: readonly EngineLoadReading[], ttlMs: number): Promise<void> {
    await this.either(
      () => this.remote.putEngineLoads(readings, ttlMs),
      () => this.local.putEngineLoads(readings, ttlMs),
    );
  }

  async getEngineLoads(nodes: readonly NodeId[]): Promise<Record<NodeId, EngineLoadReading>> {
    return this.either(
      () => this.remote.getEngineLoads(nodes),
      () => this.local.getEngineLoads(nodes),
    );
  }

  acquireSlot(request: AcquireSlotRequest): Promise<AcquireSlotResult> {
    return this.either(
      () => this.remote.acquireSlot(request),
      async () => {
        const result = await this.local.acquireSlot(request);
        if (result.node !== null) this.localLeases.add(request.leaseId);
        return result;
      },
    );
  }

  async renewLeases(leases: readonly LeaseRef[], leaseMs: number): Promise<void> {
    const local = leases.filter((l) => this.localLeases.has(l.leaseId));
    const remote = leases.filter((l) => !this.localLeases.has(l.leaseId));
    await this.local.renewLeases(local, leaseMs);
    // A remote lease that cannot be renewed expires in Redis: nothing else to do.
    if (remote.length > 0 && !this.isDegraded)
      await this.either(
        () => this.remote.renewLeases(remote, leaseMs),
        async () => undefined,
      );
  }

  releaseSlot(release: ReleaseSlotRequest): Promise<void> {
    if (this.localLeases.delete(release.leaseId)) return this.local.releaseSlot(release);
    // A remote lease released during an outage: the slot expires in Redis by itself, but
    // the attempt's outcome still counts for this replica's local circuit.
    return this.either(
      () => this.remote.releaseSlot(release),
      () => this.local.releaseSlot(release),
    );
  }

  /** Like acquireSlot: while degraded, a reserve is taken on the local state and given back there. */
  reserveSlots(request: ReserveSlotsRequest): Promise<ReserveSlotsResult> {
    return this.either(
      () => this.remote.reserveSlots(request),
      async () => {
        const result = await this.local.reserveSlots(request);
        for (let i = 0; i < result.granted; i++) this.localLeases.add(request.leaseIds[i]);
        return result;
      },
    );
  }

  async returnSlots(leases: readonly LeaseRef[]): Promise<void> {
    const local: LeaseRef[] = [];
    const remote: LeaseRef[] = [];
    for (const lease of leases) (this.localLeases.delete(lease.leaseId) ? local : remote).push(lease);
    await this.local.returnSlots(local);
    // A remote reserve that cannot be given back expires in Redis by itself.
    if (remote.length > 0 && !this.isDegraded)
      await this.either(
        () => this.remote.returnSlots(remote),
        async () => undefined,
      );
  }

  /** Both sides: a ticket may have joined a queue in Redis, then locally during an outage. */
  async leaveQueue(tickets: readonly QueueTicketRef[]): Promise<void> {
    await this.local.leaveQueue(tickets);
    if (!this.isDegraded)
      await this.either(
        () => this.remote.leaveQueue(tickets),
        async () => undefined,
      );
  }

  async renewQueueTickets(tickets: readonly QueueTicketRef[], ttlMs: number): Promise<void> {
    await this.local.renewQueueTickets(tickets, ttlMs);
    // A remote ticket that cannot be renewed expires in Redis: nothing else to do.
    if (!this.isDegraded)
      await this.either(
        () => this.remote.renewQueueTickets(tickets, ttlMs),
        async () => undefined,
      );
  }

  onSlotFreed(listener: (node: NodeId) => void): () => void {
    const offRemote = this.remote.onSlotFreed(listener);
    const offLocal = this.local.onSlotFreed(listener);
    return () => {
      offRemote();
      offLocal();
    };
  }

  async getInflight(nodes: readonly NodeId[]): Promise<Record<NodeId, number>> {
    return this.either(
      () => this.remote.getInflight(nodes),
      () => this.local.getInflight(nodes),
    );
  }

  shareInflight(report: InflightReport): Promise<Record<NodeId, number>> {
    return this.either(
      () => this.remote.shareInflight(report),
      () => this.local.shareInflight(report),
    );
  }

  /** While degraded, the local circuits judge (per replica), as for releaseSlot. */
  async recordOutcomes(outcomes: readonly NodeOutcomes[], breaker: { threshold: number; ttlMs: number }): Promise<void> {
    await this.either(
      () => this.remote.recordOutcomes(outcomes, breaker),
      () => this.local.recordOutcomes(outcomes, breaker),
    );
  }

  async getCircuits(nodes: readonly NodeId[]): Promise<Record<NodeId, CircuitInfo>> {
    return this.either(
      () => this.remote.getCircuits(nodes),
      () => this.local.getCircuits(nodes),
    );
  }

  /** Resolves while the replica can serve: with Redis, or degraded on its own. */
  async ping(): Promise<void> {
    await this.either(
      () => this.remote.ping(),
      async () => undefined,
    );
  }

  /** Resolves once remote subscriptions are live (tests, startup); see RedisStateStore. */
  async subscriptionsReady(): Promise<void> {
    const remote = this.remote as Partial<{ subscriptionsReady(): Promise<void> }>;
    await remote.subscriptionsReady?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.recheckTimer);
    this.recheckTimer = undefined;
    for (const off of this.unsubscribeRemote) off();
    this.fleetListeners.clear();
    await Promise.all([this.remote.close(), this.local.close()]);
  }

  /**
   * Remote unless degraded; a state_unavailable failure switches to degraded and falls back.
   * Not an async function: acquire and release pass through here per request, and the
   * remote promise with one catch is all they need.
   */
  private either<T>(remote: () => Promise<T>, local: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('state store is closed'));
    if (this.isDegraded) return local();
    return remote().catch((error: unknown) => {
      if (!(error instanceof GatewayError) || error.code !== 'state_unavailable') throw error;
      this.failures++;
      this.setDegraded(true, error.message);
      return local();
    });
  }

  private setDegraded(degraded: boolean, why: string): void {
    if (this.isDegraded === degraded) return;
    this.isDegraded = degraded;
    this.whyDegraded = degraded ? why : null;
    if (degraded) this.log.warn({ reason: why }, 'state degraded, serving on local state');
    else this.log.info({ reason: why }, 'state back on Redis');
    if (degraded) this.scheduleRecheck();
    // The fleet's source changed: caches should re-read.
    this.fleetChanged();
  }

  private scheduleRecheck(): void {
    if (this.closed) return;
    this.recheckTimer = setTimeout(() => void this.recheck(), this.recheckMs);
    // Never the reason a process stays alive.
    this.recheckTimer.unref();
  }

  private async recheck(): Promise<void> {
    this.recheckTimer = undefined;
    try {
      await this.remote.ping();
      this.keepFleet(await this.remote.listFleet());
      this.setDegraded(false, 'Redis answered again');
    } catch {
      // Still down (or down again between ping and listNodes): try later.
      if (this.isDegraded) this.scheduleRecheck();
    }
  }

  private keepFleet(fleet: FleetSnapshot): void {
    this.fleet = fleet;
    this.fleetReadAt = this.clock();
  }

  /**
   * The last fleet read, on the store clock moved on by the local time since: records past
   * their TTL turn stale, the lease runs out. Nothing is dropped (see the class comment).
   */
  private agedFleet(): FleetSnapshot {
    if (this.fleet === undefined) {
      throw new GatewayError('state_unavailable', 'state store unavailable: Redis is unreachable and no fleet was read yet');
    }
    const nowMs = this.fleet.nowMs + Math.max(0, this.clock() - this.fleetReadAt);
    const { monitor } = this.fleet;
    return {
      ...this.fleet,
      nodes: this.fleet.nodes.map((n) => ({ ...n, freshness: nowMs <= n.freshUntilMs ? 'fresh' : 'stale' })),
      monitor: monitor !== null && monitor.untilMs >= nowMs ? monitor : null,
      nowMs,
    };
  }

  private putLocally(state: NodeState, ttlMs: number, scan: number): Promise<void> {
    // Never read from Redis: the local clock stands in for the store's.
    if (this.fleet === undefined) this.keepFleet({ nodes: [], monitor: null, lastScan: null, nowMs: this.clock() });
    const fleet = this.agedFleet();
    const others = fleet.nodes.filter((n) => n.state.node !== state.node);
    const node = { state: structuredClone(state), freshness: 'fresh' as const, freshUntilMs: fleet.nowMs + ttlMs, scan };
    this.keepFleet({ ...fleet, nodes: [...others, node].sort((a, b) => compareNodeIds(a.state.node, b.state.node)) });
    this.fleetChanged();
    return Promise.resolve();
  }

  private markLocally(node: NodeId, error: string, checkedAtMs: number): Promise<void> {
    const known = this.fleet?.nodes.find((n) => n.state.node === node);
    if (known !== undefined) {
      known.state = { ...known.state, healthy: false, error, checkedAtMs };
      this.fleetChanged();
    }
    return Promise.resolve();
  }

  private fleetChanged(): void {
    if (this.fleetListeners.size === 0) return;
    queueMicrotask(() => {
      for (const listener of [...this.fleetListeners]) if (this.fleetListeners.has(listener)) this.safely(listener);
    });
  }

  private safely(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.log.error({ err: error }, 'state-store listener threw');
    }
  }
}
