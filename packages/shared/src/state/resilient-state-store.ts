import { GatewayError } from '../errors.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { compareNodeIds } from '../node-id.ts';
import type { CircuitInfo, Clock, NodeId, NodeState } from '../types.ts';
import { MemoryStateStore } from './memory-state-store.ts';
import type { AcquireSlotRequest, AcquireSlotResult, LeaseRef, QueueTicketRef, ReleaseSlotRequest, StateStore } from './state-store.ts';

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
  private fleet: NodeState[] | undefined;
  private readonly localLeases = new Set<string>();
  private readonly degradedListeners = new Set<(degraded: boolean) => void>();
  private readonly fleetListeners = new Set<() => void>();
  private readonly unsubscribeRemote: (() => void)[];
  private recheckTimer: NodeJS.Timeout | undefined;
  private isDegraded = false;
  private whyDegraded: string | null = null;
  private failures = 0;
  private closed = false;

  constructor(options: ResilientStateStoreOptions) {
    this.remote = options.remote;
    this.local = new MemoryStateStore({ clock: options.clock });
    this.recheckMs = options.recheckMs ?? 1000;
    this.log = options.log ?? silentLogger;
    this.unsubscribeRemote = [this.remote.onFleetChange(() => this.fleetChanged())];
  }

  /** true while Redis is unreachable and this replica runs on its own (health, metrics). */
  get degraded(): boolean {
    return this.isDegraded;
  }

  /** Why this replica is degraded (the Redis error that started it); null while it is not. */
  get degradedReason(): string | null {
    return this.whyDegraded;
  }

  /** Calls to Redis that failed with state_unavailable since start (the errors metric). */
  get remoteFailures(): number {
    return this.failures;
  }

  onDegradedChange(listener: (degraded: boolean) => void): () => void {
    this.degradedListeners.add(listener);
    return () => this.degradedListeners.delete(listener);
  }

  async putNode(state: NodeState, ttlMs: number): Promise<void> {
    // Locally, an in-process monitor's writes still reach this replica's readers.
    await this.either(
      () => this.remote.putNode(state, ttlMs),
      () => this.putLocally(state),
    );
  }

  async markNodeUnhealthy(node: NodeId, error: string, checkedAtMs: number): Promise<void> {
    await this.either(
      () => this.remote.markNodeUnhealthy(node, error, checkedAtMs),
      () => this.markLocally(node, error, checkedAtMs),
    );
  }

  async listNodes(): Promise<NodeState[]> {
    return this.either(
      async () => {
        this.fleet = await this.remote.listNodes();
        return this.fleet.map((n) => structuredClone(n));
      },
      async () => {
        if (this.fleet === undefined) {
          throw new GatewayError('state_unavailable', 'state store unavailable: Redis is unreachable and no fleet was read yet');
        }
        return this.fleet.map((n) => structuredClone(n));
      },
    );
  }

  onFleetChange(listener: () => void): () => void {
    this.fleetListeners.add(listener);
    return () => this.fleetListeners.delete(listener);
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
    this.degradedListeners.clear();
    this.fleetListeners.clear();
    await Promise.all([this.remote.close(), this.local.close()]);
  }

  /**
   * Remote unless degraded; a state_unavailable failure switches to degraded and falls back.
   * Not an async function: acquire and release pass through here per request (issue 6), and
   * the remote promise with one catch is all they need.
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
    for (const listener of [...this.degradedListeners]) this.safely(() => listener(degraded));
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
      this.fleet = await this.remote.listNodes();
      this.setDegraded(false, 'Redis answered again');
    } catch {
      // Still down (or down again between ping and listNodes): try later.
      if (this.isDegraded) this.scheduleRecheck();
    }
  }

  private putLocally(state: NodeState): Promise<void> {
    const others = (this.fleet ?? []).filter((n) => n.node !== state.node);
    this.fleet = [...others, structuredClone(state)].sort((a, b) => compareNodeIds(a.node, b.node));
    this.fleetChanged();
    return Promise.resolve();
  }

  private markLocally(node: NodeId, error: string, checkedAtMs: number): Promise<void> {
    const known = this.fleet?.find((n) => n.node === node);
    if (known !== undefined) {
      Object.assign(known, { healthy: false, error, checkedAtMs });
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
