import { validateEngineLoads, type EngineLoadReading } from '../engine-load.ts';
import type { CircuitInfo, Clock, NodeId, NodeState } from '../types.ts';
import {
  acquirePlan,
  freeSlots,
  hasFreeSlot,
  isPositiveMs,
  mayTakeSlot,
  reserveGrant,
  uniqueCandidates,
  validateAcquireRequest,
  circuitAfterOutcomes,
  circuitAfterRelease,
  circuitGate,
  circuitInfo,
  validateInflightReport,
  validateOutcomes,
  validateRelease,
  validateReserveRequest,
  type CircuitRecord,
} from './slot-rules.ts';
import {
  NEVER_DEGRADED,
  type AcquireSlotRequest,
  type AcquireSlotResult,
  type CompletedScan,
  type FleetSnapshot,
  type InflightReport,
  type LeaseRef,
  type MonitorLease,
  type NodeOutcomes,
  type PutNodeOptions,
  type QueueTicket,
  type QueueTicketRef,
  type ReleaseSlotRequest,
  type ReserveSlotsRequest,
  type ReserveSlotsResult,
  type StateStore,
  type StateStoreHealth,
  validateResponseOwner,
} from './state-store.ts';
import { ExpiringIds } from './expiring-ids.ts';
import { judgeFleet, validateMonitorId, validatePutNodeOptions, type StoredNode } from './fleet-freshness.ts';

export interface MemoryStateStoreOptions {
  /** Injected so TTL, lease and circuit timing can be tested without sleeping. */
  clock?: Clock;
}

interface Expiring<T> {
  value: T;
  /** Alive while now <= expiresAtMs, like a Redis key with PX. */
  expiresAtMs: number;
}

/**
 * The single-process store behind `pnpm start` without Redis. Same semantics as the Redis
 * store (one contract suite runs against both): TTLs are checked against the clock on
 * read, so no timers keep the process alive, and listeners fire in a microtask, never
 * inside the caller's stack, as pub/sub would.
 */
export class MemoryStateStore implements StateStore {
  readonly kind = 'memory' as const;
  private readonly clock: Clock;
  /** Bounded by the fleet: one entry per node the monitor polls, replaced every poll. */
  private readonly engineLoads = new Map<NodeId, Expiring<EngineLoadReading>>();
  private readonly responseOwners = new Map<string, Expiring<NodeId>>();
  private liveResponseOwners = 1024;
  /** Each record lives (expiresAtMs) for its TTL plus its keep time. */
  private readonly nodes = new Map<NodeId, Expiring<StoredNode>>();
  private monitorLease: MonitorLease | undefined;
  private scans = { next: 0, completed: null as CompletedScan | null };
  /** node -> its leases (ids with expiry). */
  private readonly leases = new Map<NodeId, ExpiringIds>();
  private readonly circuits = new Map<NodeId, CircuitRecord>();
  /** replica id -> its last shareInflight counts (bounded by the replicas alive within a ttl). */
  private readonly shares = new Map<string, Expiring<Record<NodeId, number>>>();
  /** Round-robin counters; bounded by the number of rotate keys (models), so no TTL. */
  private readonly counters = new Map<string, number>();
  private readonly stickies = new Map<string, Expiring<NodeId>>();
  /** queue name -> its tickets, in arrival order. */
  private readonly queues = new Map<string, ExpiringIds>();
  private stickySweepAt = 1024;
  private readonly fleetListeners = new Set<() => void>();
  private readonly slotListeners = new Set<(node: NodeId) => void>();
  private closed = false;

  constructor(options: MemoryStateStoreOptions = {}) {
    this.clock = options.clock ?? Date.now;
  }

  async putNode(state: NodeState, ttlMs: number, options?: PutNodeOptions): Promise<void> {
    this.assertOpen();
    if (typeof state?.node !== 'string' || state.node === '') throw new TypeError('putNode: state.node must be a node id');
    if (!isPositiveMs(ttlMs)) throw new TypeError(`putNode: ttlMs must be an integer ≥ 1, got ${String(ttlMs)}`);
    const { keepMs, scan } = validatePutNodeOptions(options);
    const now = this.clock();
    const record: StoredNode = { state: structuredClone(state), freshUntilMs: now + ttlMs, scan };
    this.nodes.set(state.node, { value: record, expiresAtMs: now + ttlMs + keepMs });
    this.emit(this.fleetListeners, undefined);
  }

  async markNodeUnhealthy(node: NodeId, error: string, checkedAtMs: number): Promise<void> {
    this.assertOpen();
    const entry = this.liveNode(node, this.clock());
    if (entry === undefined) return;
    // Freshness and expiry are kept: a server that stays dead must leave the fleet by itself.
    entry.value = { ...entry.value, state: { ...entry.value.state, healthy: false, error, checkedAtMs } };
    this.emit(this.fleetListeners, undefined);
  }

  async listNodes(): Promise<NodeState[]> {
    return (await this.listFleet()).nodes.map((n) => n.state);
  }

  async listFleet(): Promise<FleetSnapshot> {
    this.assertOpen();
    const now = this.clock();
    const records: StoredNode[] = [];
    for (const id of this.nodes.keys()) {
      const entry = this.liveNode(id, now);
      if (entry !== undefined) records.push(structuredClone(entry.value));
    }
    const lastScan = this.scans.completed;
    return {
      nodes: judgeFleet(records, now, lastScan?.scan ?? 0),
      monitor: this.liveLease(now) ?? null,
      lastScan: lastScan && { ...lastScan },
      nowMs: now,
    };
  }

  async claimMonitorLease(monitorId: string, leaseMs: number): Promise<MonitorLease> {
    this.assertOpen();
    validateMonitorId('claimMonitorLease', monitorId);
    if (!isPositiveMs(leaseMs)) throw new TypeError(`claimMonitorLease: leaseMs must be an integer ≥ 1, got ${String(leaseMs)}`);
    const now = this.clock();
    const held = this.liveLease(now);
    if (held === undefined) this.monitorLease = { monitorId, sinceMs: now, untilMs: now + leaseMs };
    else if (held.monitorId === monitorId) held.untilMs = now + leaseMs;
    return { ...this.monitorLease! };
  }

  async releaseMonitorLease(monitorId: string): Promise<void> {
    this.assertOpen();
    if (this.liveLease(this.clock())?.monitorId === monitorId) this.monitorLease = undefined;
  }

  async beginScan(): Promise<number> {
    this.assertOpen();
    this.scans.next += 1;
    return this.scans.next;
  }

  async completeScan(scan: number, monitorId: string): Promise<void> {
    this.assertOpen();
    validateMonitorId('completeScan', monitorId);
    if (!Number.isSafeInteger(scan) || scan < 1) throw new TypeError(`completeScan: scan must be an integer ≥ 1, got ${String(scan)}`);
    // A later beginScan must still hand out a bigger number (see the Redis store).
    this.scans.next = Math.max(this.scans.next, scan);
    if (scan <= (this.scans.completed?.scan ?? 0)) return;
    this.scans.completed = { scan, monitorId, completedAtMs: this.clock() };
    this.emit(this.fleetListeners, undefined);
  }

  onFleetChange(listener: () => void): () => void {
    this.fleetListeners.add(listener);
    return () => this.fleetListeners.delete(listener);
  }

  async putResponseOwner(responseId: string, node: NodeId, ttlMs: number): Promise<void> {
    this.assertOpen();
    validateResponseOwner(responseId, ttlMs);
    this.responseOwners.set(responseId, { value: node, expiresAtMs: this.clock() + ttlMs });
    // Expired entries leave in one sweep once they outnumber the live ones: no timer, O(1) amortised.
    if (this.responseOwners.size > 2 * this.liveResponseOwners) this.sweepResponseOwners();
  }

  async getResponseOwner(responseId: string): Promise<NodeId | null> {
    this.assertOpen();
    const entry = this.responseOwners.get(responseId);
    if (entry === undefined) return null;
    if (entry.expiresAtMs < this.clock()) {
      this.responseOwners.delete(responseId);
      return null;
    }
    return entry.value;
  }

  private sweepResponseOwners(): void {
    const now = this.clock();
    for (const [id, entry] of this.responseOwners) if (entry.expiresAtMs < now) this.responseOwners.delete(id);
    this.liveResponseOwners = Math.max(1024, this.responseOwners.size);
  }

  async putEngineLoads(readings: readonly EngineLoadReading[], ttlMs: number): Promise<void> {
    this.assertOpen();
    validateEngineLoads(readings, ttlMs);
    const expiresAtMs = this.clock() + ttlMs;
    for (const reading of readings) this.engineLoads.set(reading.node, { value: structuredClone(reading), expiresAtMs });
  }

  async getEngineLoads(nodes: readonly NodeId[]): Promise<Record<NodeId, EngineLoadReading>> {
    this.assertOpen();
    const now = this.clock();
    const found: Record<NodeId, EngineLoadReading> = {};
    for (const node of nodes) {
      const entry = this.engineLoads.get(node);
      if (entry === undefined) continue;
      if (entry.expiresAtMs < now) this.engineLoads.delete(node);
      else found[node] = structuredClone(entry.value);
    }
    return found;
  }

  async acquireSlot(request: AcquireSlotRequest): Promise<AcquireSlotResult> {
    this.assertOpen();
    validateAcquireRequest(request);
    const candidates = uniqueCandidates(request.candidates);
    if (candidates.length === 0) return { node: null, probe: false, reason: 'capacity', inflight: {} };
    const now = this.clock();
    const inflight = candidates.map((c) => this.leasesOf(c.node).size(now));
    const queue = request.queue;
    if (queue !== undefined && !this.queueLetsThrough(queue, candidates, inflight, now)) {
      return { node: null, probe: false, reason: 'capacity', inflight: countsByNode(candidates, inflight) };
    }
    const rotateCounter = request.order === 'rotate' ? this.increment(request.rotateKey!) : 0;
    const stickyNode = request.sticky ? this.liveSticky(request.sticky.key, now) : null;
    const order = acquirePlan({ candidates, order: request.order, inflight, rotateCounter, stickyNode });

    let sawFull = false;
    for (const i of order) {
      const { node, maxconn } = candidates[i];
      const gate = circuitGate(this.circuits.get(node), now);
      if (gate === 'blocked') continue;
      if (!hasFreeSlot(inflight[i], maxconn)) {
        sawFull = true;
        continue;
      }
      this.leasesOf(node).set(request.leaseId, now + request.leaseMs);
      inflight[i] += 1;
      if (gate === 'probe') this.circuits.get(node)!.probeUntilMs = now + request.probeLeaseMs;
      if (request.sticky) this.setSticky(request.sticky.key, node, now + request.sticky.ttlMs);
      if (queue !== undefined) this.queues.get(queue.key)?.delete(queue.ticket);
      return { node, probe: gate === 'probe', reason: 'ok', inflight: countsByNode(candidates, inflight) };
    }
    if (sawFull && queue?.join) this.joinQueue(queue, now);
    return { node: null, probe: false, reason: sawFull ? 'capacity' : 'circuit', inflight: countsByNode(candidates, inflight) };
  }

  async leaveQueue(tickets: readonly QueueTicketRef[]): Promise<void> {
    this.assertOpen();
    for (const { key, ticket } of tickets) this.queues.get(key)?.delete(ticket);
  }

  async renewQueueTickets(tickets: readonly QueueTicketRef[], ttlMs: number): Promise<void> {
    this.assertOpen();
    if (!isPositiveMs(ttlMs)) throw new TypeError(`renewQueueTickets: ttlMs must be an integer ≥ 1, got ${String(ttlMs)}`);
    const now = this.clock();
    for (const { key, ticket } of tickets) {
      const queue = this.queues.get(key);
      // Like a lease: an expired ticket lost its place and does not come back.
      if (queue?.has(ticket, now)) queue.set(ticket, now + ttlMs);
    }
  }

  async renewLeases(leases: readonly LeaseRef[], leaseMs: number): Promise<void> {
    this.assertOpen();
    if (!isPositiveMs(leaseMs)) throw new TypeError(`renewLeases: leaseMs must be an integer ≥ 1, got ${String(leaseMs)}`);
    const now = this.clock();
    for (const { node, leaseId } of leases) {
      const held = this.leases.get(node);
      // Only a live lease is extended: an expired one already gave its slot away.
      if (held?.has(leaseId, now)) held.set(leaseId, now + leaseMs);
    }
  }

  async releaseSlot(release: ReleaseSlotRequest): Promise<void> {
    this.assertOpen();
    validateRelease(release);
    this.leases.get(release.node)?.delete(release.leaseId);
    const next = circuitAfterRelease(this.circuits.get(release.node), release.outcome, release.probe, release.breaker, this.clock());
    if (next === null) this.circuits.delete(release.node);
    else this.circuits.set(release.node, next);
    this.emit(this.slotListeners, release.node);
    // Opened (or re-opened by its probe), or closed by its probe: gateways route by their cached circuits.
    const opened = release.outcome === 'failure' && (release.probe || next!.failures >= release.breaker.threshold);
    if (opened || (release.probe && release.outcome === 'success')) this.emit(this.fleetListeners, undefined);
  }

  async reserveSlots(request: ReserveSlotsRequest): Promise<ReserveSlotsResult> {
    this.assertOpen();
    validateReserveRequest(request);
    const now = this.clock();
    const held = this.leasesOf(request.node);
    const live = held.size(now);
    const granted = reserveGrant(live, circuitGate(this.circuits.get(request.node), now), request);
    for (let i = 0; i < granted; i++) held.set(request.leaseIds[i], now + request.leaseMs);
    return { granted, inflight: live + granted };
  }

  async returnSlots(leases: readonly LeaseRef[]): Promise<void> {
    this.assertOpen();
    const nodes = new Set<NodeId>();
    for (const { node, leaseId } of leases) {
      this.leases.get(node)?.delete(leaseId);
      nodes.add(node);
    }
    for (const node of nodes) this.emit(this.slotListeners, node);
  }

  async recordOutcomes(outcomes: readonly NodeOutcomes[], breaker: { threshold: number; ttlMs: number }): Promise<void> {
    this.assertOpen();
    validateOutcomes(outcomes, breaker);
    const now = this.clock();
    let anyOpened = false;
    for (const batch of outcomes) {
      const { circuit, opened } = circuitAfterOutcomes(this.circuits.get(batch.node), batch, breaker, now);
      if (circuit === null) this.circuits.delete(batch.node);
      else this.circuits.set(batch.node, circuit);
      anyOpened ||= opened;
    }
    if (anyOpened) this.emit(this.fleetListeners, undefined);
  }

  async shareInflight(report: InflightReport): Promise<Record<NodeId, number>> {
    this.assertOpen();
    validateInflightReport(report);
    const now = this.clock();
    const counts = Object.fromEntries(Object.entries(report.counts).filter(([, n]) => n > 0));
    if (Object.keys(counts).length === 0) this.shares.delete(report.replicaId);
    else this.shares.set(report.replicaId, { value: counts, expiresAtMs: now + report.ttlMs });
    return this.inflightOf(report.nodes, now, report.replicaId);
  }

  onSlotFreed(listener: (node: NodeId) => void): () => void {
    this.slotListeners.add(listener);
    return () => this.slotListeners.delete(listener);
  }

  async getInflight(nodes: readonly NodeId[]): Promise<Record<NodeId, number>> {
    this.assertOpen();
    return this.inflightOf(nodes, this.clock(), null);
  }

  /** Live leases plus every unexpired share but `exceptReplica`'s. */
  private inflightOf(nodes: readonly NodeId[], now: number, exceptReplica: string | null): Record<NodeId, number> {
    const counts: Record<NodeId, number> = {};
    for (const node of nodes) counts[node] = this.leases.get(node)?.size(now) ?? 0;
    for (const [replica, share] of this.shares) {
      if (share.expiresAtMs < now) this.shares.delete(replica);
      else if (replica !== exceptReplica) for (const node of nodes) counts[node] += share.value[node] ?? 0;
    }
    return counts;
  }

  async getCircuits(nodes: readonly NodeId[]): Promise<Record<NodeId, CircuitInfo>> {
    this.assertOpen();
    const now = this.clock();
    return Object.fromEntries(nodes.map((node) => [node, circuitInfo(this.circuits.get(node), now)]));
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  health(): StateStoreHealth {
    return NEVER_DEGRADED;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.fleetListeners.clear();
    this.slotListeners.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('state store is closed');
  }

  private liveLease(now: number): MonitorLease | undefined {
    if (this.monitorLease !== undefined && this.monitorLease.untilMs < now) this.monitorLease = undefined;
    return this.monitorLease;
  }

  private liveNode(node: NodeId, now: number): Expiring<StoredNode> | undefined {
    const entry = this.nodes.get(node);
    if (entry !== undefined && entry.expiresAtMs < now) {
      this.nodes.delete(node);
      return undefined;
    }
    return entry;
  }

  private leasesOf(node: NodeId): ExpiringIds {
    let held = this.leases.get(node);
    if (held === undefined) {
      held = new ExpiringIds();
      this.leases.set(node, held);
    }
    return held;
  }

  /**
   * The queue gate of acquireSlot (same rules as ACQUIRE_FN in redis-scripts.ts): false
   * when the tickets ahead of this request may take every free slot; it then waits (joins
   * with `join`, refreshes its ticket when already waiting).
   */
  private queueLetsThrough(
    ticket: QueueTicket,
    candidates: readonly { node: NodeId; maxconn: number }[],
    inflight: number[],
    now: number,
  ): boolean {
    const queue = this.liveQueue(ticket.key, now);
    if (queue === undefined) return true;
    const gates = candidates.map((c) => circuitGate(this.circuits.get(c.node), now));
    // Every candidate's circuit is open: that is the answer, not a place in line.
    if (gates.every((g) => g === 'blocked')) return true;
    const rank = queue.rank(ticket.ticket, now);
    const ahead = rank === -1 ? queue.size(now) : rank;
    if (
      mayTakeSlot(
        ahead,
        freeSlots(
          candidates.map((c) => c.maxconn),
          inflight,
          gates,
        ),
      )
    )
      return true;
    if (rank !== -1) queue.set(ticket.ticket, now + ticket.ttlMs);
    else if (ticket.join) this.joinQueue(ticket, now);
    return false;
  }

  private joinQueue(ticket: QueueTicket, now: number): void {
    let queue = this.queues.get(ticket.key);
    if (queue === undefined) {
      queue = new ExpiringIds();
      this.queues.set(ticket.key, queue);
    }
    // A ticket already in line keeps its place (set() on an existing key keeps the order).
    queue.set(ticket.ticket, now + ticket.ttlMs);
  }

  /** The queue when it holds a live ticket; an empty one is dropped (bounded by queue names). */
  private liveQueue(key: string, now: number): ExpiringIds | undefined {
    const queue = this.queues.get(key);
    if (queue === undefined || queue.size(now) > 0) return queue;
    this.queues.delete(key);
    return undefined;
  }

  private increment(key: string): number {
    const value = (this.counters.get(key) ?? 0) + 1;
    this.counters.set(key, value);
    return value;
  }

  private liveSticky(key: string, now: number): NodeId | null {
    const entry = this.stickies.get(key);
    return entry !== undefined && entry.expiresAtMs >= now ? entry.value : null;
  }

  private setSticky(key: string, node: NodeId, expiresAtMs: number): void {
    this.stickies.set(key, { value: node, expiresAtMs });
    // Session ids are unbounded over time: sweep expired ones once the map has doubled.
    if (this.stickies.size < this.stickySweepAt) return;
    const now = this.clock();
    for (const [k, entry] of this.stickies) if (entry.expiresAtMs < now) this.stickies.delete(k);
    this.stickySweepAt = Math.max(1024, this.stickies.size * 2);
  }

  private emit<T>(listeners: Set<(value: T) => void>, value: T): void {
    if (listeners.size === 0) return;
    queueMicrotask(() => {
      for (const listener of [...listeners]) {
        // A listener removed before delivery gets nothing, like an unsubscribed channel.
        if (!listeners.has(listener)) continue;
        try {
          listener(value);
        } catch (error) {
          process.emitWarning(`state-store listener threw: ${String(error)}`);
        }
      }
    });
  }
}

function countsByNode(candidates: readonly { node: NodeId }[], inflight: readonly number[]): Record<NodeId, number> {
  return Object.fromEntries(candidates.map((c, i) => [c.node, inflight[i]]));
}
