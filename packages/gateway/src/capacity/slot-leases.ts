import { randomBytes } from 'node:crypto';
import type { AcquireSlotRequest, AcquireSlotResult, AttemptOutcome, LeaseRef, NodeId, StateStore } from '@ai-lb/shared';
import type { AbortSignalLike } from '../http/exchange.ts';
import type { AcquirePlan } from '../routing/routing-rules.ts';
import { LocalSlots, type FleetView } from './local-slots.ts';
import { SlotWaitQueue } from './wait-for-slot.ts';

export interface Lease {
  node: NodeId;
  /** '' for an attempt placed without the store (local). */
  leaseId: string;
  /** This attempt is its node's half-open circuit probe. */
  probe: boolean;
  /**
   * Placed by this process (LocalSlots): on an uncapped node with no lease in the store
   * (leaseId ''), or on a slot of a capped node's reserve (SlotReserves).
   */
  local?: true;
}

export type Placement = { kind: 'placed'; lease: Lease } | { kind: 'rejected'; reason: 'capacity' | 'circuit'; waited: boolean };

export interface SlotLeasesOptions {
  leaseMs: number;
  /** Bounds how long a half-open probe that never reports back blocks the next one. */
  probeLeaseMs: number;
  queueTimeoutMs: number;
  /**
   * CIRCUIT_BREAKER_THRESHOLD / _TTL. The breaker itself lives in the store, shared by every
   * replica (a breaker per process would let N replicas each hammer a dead node N × threshold
   * times): acquireSlot skips open circuits and hands out the single half-open probe,
   * releaseSlot records each attempt's outcome. The gateway decides only which outcome an
   * attempt had (classify-failure.ts).
   */
  breaker: { threshold: number; ttlMs: number };
  clock: () => number;
  onError: (error: unknown) => void;
  /**
   * The fleet cache: the circuits and counts local placement goes by, and where counts go
   * between fleet refreshes (the live counts each acquireSlot returns, the shared reports,
   * each attempt of ours placed and ended).
   */
  fleet: FleetView;
  /** How often this replica shares its in-flight counts and reports outcomes (≤ 100 ms). */
  reportIntervalMs: number;
  /** Counters of placements by how they were made (the metric's children: a count costs no call). */
  placements?: Record<PlacedVia, { value: number }>;
  /** A request left the queue: how long it waited and how it left (the queue-wait histogram). */
  onQueueWait?: (seconds: number, result: QueueWaitResult) => void;
}

export type PlacedVia = 'local' | 'reserve' | 'store';

const UNCOUNTED: Record<PlacedVia, { value: number }> = { local: { value: 0 }, reserve: { value: 0 }, store: { value: 0 } };

export type QueueWaitResult = 'placed' | 'timeout' | 'aborted' | 'circuit' | 'error';

/**
 * Lease ids must be unique across every replica on one Redis: 72 random bits per process
 * and a counter. Cheaper per request than a randomUUID(), and just as unique.
 */
const PROCESS_TAG = randomBytes(9).toString('base64url');
let leaseCounter = 0;
let gatewaysInProcess = 0;
function nextLeaseId(): string {
  return `${PROCESS_TAG}.${(++leaseCounter).toString(36)}`;
}

export interface AcquireOptions {
  group: string;
  sticky?: { key: string; ttlMs: number };
  signal: AbortSignalLike;
  mayQueue: boolean;
  /** Where the time spent in the queue is added up (the request's exchange, for its access-log line). */
  waits?: { queueWaitMs: number | null };
}

/**
 * Capacity. An attempt with no sticky session whose candidates' circuits the fleet cache
 * sees closed is placed by this process when it can be, with no store call (LocalSlots):
 * on an uncapped node, or on a slot of a capped node's reserve (SlotReserves). Every other
 * attempt leases a slot with ONE acquireSlot call before it is sent upstream and gives it
 * back with ONE releaseSlot call (which also records the outcome in the node's circuit);
 * those leases, reserved slots included, are renewed in the background by the LeaseKeeper.
 */
export class SlotLeases {
  private readonly keeper: LeaseKeeper;
  private readonly local: LocalSlots;
  private readonly placed: Record<PlacedVia, { value: number }>;
  readonly queue: SlotWaitQueue;

  constructor(
    private readonly store: StateStore,
    private readonly options: SlotLeasesOptions,
  ) {
    this.keeper = new LeaseKeeper(store, options.leaseMs, options.onError);
    this.placed = options.placements ?? UNCOUNTED;
    // A ticket lives as long as a lease: a dead replica's waiters leave the line within SLOT_LEASE_SECS.
    this.queue = new SlotWaitQueue(store, options.leaseMs, options.clock, options.onError);
    this.local = new LocalSlots(store, options.fleet, {
      replicaId: `${PROCESS_TAG}.${++gatewaysInProcess}`,
      reportIntervalMs: options.reportIntervalMs,
      breaker: options.breaker,
      clock: options.clock,
      onError: options.onError,
      reserves: { leaseMs: options.leaseMs, newLeaseId: nextLeaseId, keeper: this.keeper },
    });
  }

  start(): void {
    this.keeper.start();
    this.local.start();
  }

  stop(): void {
    this.keeper.stop();
    this.local.stop();
    this.queue.close();
  }

  /**
   * Leases a slot on the first node of the plan that may take the request. When all are
   * full and QUEUE_TIMEOUT_MS > 0, waits in line for one. `plan` is called per try, so a
   * waiting request sees the fleet as it is when a slot frees. A placement this process
   * makes itself is returned at once (no promise to await); the store's comes as a promise.
   */
  acquire(plan: () => AcquirePlan, options: AcquireOptions): Placement | Promise<Placement> {
    const first = plan();
    // LocalSlots takes only plans with every circuit closed whose node it can place itself:
    // uncapped, or capped with a reserved slot at hand (else null).
    if (options.sticky === undefined) {
      const lease = this.local.place(first);
      if (lease !== null) {
        if (options.signal.aborted) {
          this.local.release(lease, 'neutral');
          throw options.signal.reason;
        }
        this.placed[lease.leaseId === '' ? 'local' : 'reserve'].value++;
        return { kind: 'placed', lease };
      }
    }
    return this.acquireFromStore(first, plan, options);
  }

  private async acquireFromStore(first: AcquirePlan, plan: () => AcquirePlan, options: AcquireOptions): Promise<Placement> {
    const leaseId = nextLeaseId();
    const canQueue = options.mayQueue && this.options.queueTimeoutMs > 0;
    // The lease id doubles as the queue ticket: unique, and gone with the request.
    const queue = canQueue ? { key: options.group, ticket: leaseId, ttlMs: this.options.leaseMs, join: true } : undefined;
    // With a queue, this first call also joins it when there is no room (same round trip).
    let result: AcquireSlotResult | null = await this.tryAcquire(first, leaseId, options.sticky, queue);
    let waited = false;
    if (canQueue && result.reason === 'capacity') {
      waited = true;
      const tryAcquire = () => this.tryAcquire(plan(), leaseId, options.sticky, queue);
      const since = this.options.clock();
      try {
        result = await this.waitInQueue(options.group, leaseId, tryAcquire, options.signal);
      } finally {
        if (options.waits) options.waits.queueWaitMs = (options.waits.queueWaitMs ?? 0) + (this.options.clock() - since);
      }
    }
    if (result === null || result.node === null) {
      return { kind: 'rejected', reason: result?.reason === 'circuit' ? 'circuit' : 'capacity', waited };
    }
    const lease: Lease = { node: result.node, leaseId, probe: result.probe };
    this.keeper.add(lease);
    this.placed.store.value++;
    if (options.signal.aborted) {
      // The client left while the slot was being acquired: give it straight back.
      await this.release(lease, 'neutral');
      throw options.signal.reason;
    }
    return { kind: 'placed', lease };
  }

  private async tryAcquire(
    plan: AcquirePlan,
    leaseId: string,
    sticky: AcquireSlotRequest['sticky'],
    queue: AcquireSlotRequest['queue'],
  ): Promise<AcquireSlotResult> {
    const { leaseMs, probeLeaseMs } = this.options;
    const { candidates, order, rotateKey } = plan;
    const result = await this.store.acquireSlot({ candidates, order, rotateKey, leaseId, leaseMs, probeLeaseMs, sticky, queue });
    this.noteLeaseCounts(candidates, result);
    return result;
  }

  /**
   * The live counts acquireSlot returns are exact for capped nodes. An uncapped node's
   * count there holds its leases only, not the attempts placed without one: the cache
   * keeps its own figure for those, one up for the lease just taken.
   */
  private noteLeaseCounts(candidates: AcquirePlan['candidates'], result: AcquireSlotResult): void {
    const { fleet } = this.options;
    // A capped node's count holds the idle slots of this process's reserve, which are not attempts.
    const capped: Record<NodeId, number> = {};
    for (const c of candidates) if (c.maxconn > 0) capped[c.node] = result.inflight[c.node] - this.local.idleOf(c.node);
    fleet.noteInflight(capped);
    if (result.node !== null && candidates.some((c) => c.node === result.node && c.maxconn === 0)) fleet.noteAcquired(result.node);
  }

  private async waitInQueue(
    group: string,
    ticket: string,
    tryAcquire: () => Promise<AcquireSlotResult>,
    signal: AbortSignalLike,
  ): Promise<AcquireSlotResult | null> {
    const startedAt = this.options.clock();
    const seconds = () => (this.options.clock() - startedAt) / 1000;
    try {
      const deadlineMs = startedAt + this.options.queueTimeoutMs;
      const result = await this.queue.waitForSlot({ group, ticket, tryAcquire, deadlineMs, signal });
      const outcome: QueueWaitResult =
        result === null ? 'timeout' : result.node === null ? 'circuit' : signal.aborted ? 'aborted' : 'placed';
      this.options.onQueueWait?.(seconds(), outcome);
      return result;
    } catch (error) {
      this.options.onQueueWait?.(seconds(), signal.aborted ? 'aborted' : 'error');
      throw error;
    }
  }

  /** Slots of `node` this process holds idle in a reserve (the reserved-idle gauge). */
  idleOf(node: NodeId): number {
    return this.local.idleOf(node);
  }

  /**
   * Frees the slot and records the outcome; a store error is logged, the lease then expires
   * by itself. An attempt placed locally only counts down and joins the next outcome report.
   */
  async release(lease: Lease, outcome: AttemptOutcome): Promise<void> {
    if (lease.local) return this.local.release(lease, outcome);
    this.keeper.remove(lease.leaseId);
    this.options.fleet.noteReleased(lease.node);
    try {
      await this.store.releaseSlot({
        node: lease.node,
        leaseId: lease.leaseId,
        outcome,
        probe: lease.probe,
        breaker: this.options.breaker,
      });
    } catch (error) {
      this.options.onError(error);
    }
  }
}

/**
 * Keeps this process's slot leases alive: one renewLeases batch for all of them every
 * leaseMs/3, so a long stream keeps its slot while a dead replica's slots expire within
 * SLOT_LEASE_SECS. One timer per process, not one per request.
 */
class LeaseKeeper {
  private readonly held = new Map<string, LeaseRef>();
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;

  constructor(
    private readonly store: StateStore,
    private readonly leaseMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.renew(), Math.max(20, Math.floor(this.leaseMs / 3)));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  add(lease: LeaseRef): void {
    this.held.set(lease.leaseId, lease);
  }

  remove(leaseId: string): void {
    this.held.delete(leaseId);
  }

  async renew(): Promise<void> {
    // A slow store must not stack renewals on top of each other.
    if (this.held.size === 0 || this.renewing) return;
    this.renewing = true;
    try {
      await this.store.renewLeases([...this.held.values()], this.leaseMs);
    } catch (error) {
      this.onError(error);
    } finally {
      this.renewing = false;
    }
  }
}
