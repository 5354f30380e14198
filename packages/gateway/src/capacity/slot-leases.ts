import { randomUUID } from 'node:crypto';
import type { AcquireSlotResult, AttemptOutcome, NodeId, StateStore } from '@ai-lb/shared';
import type { AcquirePlan } from '../routing/strategies.ts';
import { LeaseKeeper } from './lease-keeper.ts';
import { SlotWaitQueue } from './wait-for-slot.ts';

export interface Lease {
  node: NodeId;
  leaseId: string;
  /** This attempt is its node's half-open circuit probe. */
  probe: boolean;
}

export type Placement =
  | { kind: 'placed'; lease: Lease }
  | { kind: 'rejected'; reason: 'capacity' | 'circuit'; waited: boolean };

export interface SlotLeasesOptions {
  leaseMs: number;
  /** Bounds how long a half-open probe that never reports back blocks the next one. */
  probeLeaseMs: number;
  queueTimeoutMs: number;
  breaker: { threshold: number; ttlMs: number };
  clock: () => number;
  onError: (error: unknown) => void;
  /** Live in-flight counts that acquireSlot returned (feeds the fleet cache). */
  onInflight?: (counts: Record<NodeId, number>) => void;
  /** A slot of ours was given back (the cache counts it down until its next refresh). */
  onReleased?: (node: NodeId) => void;
}

/**
 * Capacity: every attempt leases a slot with ONE acquireSlot call before it is sent
 * upstream and gives it back with ONE releaseSlot call (which also records the outcome in
 * the node's circuit). Leases are renewed in the background by the LeaseKeeper.
 */
export class SlotLeases {
  readonly keeper: LeaseKeeper;
  readonly queue: SlotWaitQueue;

  constructor(
    private readonly store: StateStore,
    private readonly options: SlotLeasesOptions,
  ) {
    this.keeper = new LeaseKeeper(store, options.leaseMs, options.onError);
    this.queue = new SlotWaitQueue(store, options.clock);
  }

  start(): void {
    this.keeper.start();
  }

  stop(): void {
    this.keeper.stop();
    this.queue.close();
  }

  /**
   * Leases a slot on the first node of the plan that may take the request. When all are
   * full and QUEUE_TIMEOUT_MS > 0, waits in line for one. `plan` is called per try, so a
   * waiting request sees the fleet as it is when a slot frees.
   */
  async acquire(
    plan: () => AcquirePlan,
    options: { group: string; sticky?: { key: string; ttlMs: number }; signal: AbortSignal; mayQueue: boolean },
  ): Promise<Placement> {
    const leaseId = randomUUID();
    const tryAcquire = () =>
      this.store
        .acquireSlot({ ...plan(), leaseId, leaseMs: this.options.leaseMs, probeLeaseMs: this.options.probeLeaseMs, sticky: options.sticky })
        .then((result) => (this.options.onInflight?.(result.inflight), result));
    const canQueue = options.mayQueue && this.options.queueTimeoutMs > 0;
    // FIFO within the process: while others of the group wait, a newcomer queues behind them.
    let result: AcquireSlotResult | null = canQueue && this.queue.hasWaiters(options.group) ? null : await tryAcquire();
    let waited = false;
    if (canQueue && (result === null || result.reason === 'capacity')) {
      waited = true;
      const deadline = this.options.clock() + this.options.queueTimeoutMs;
      result = (await this.queue.waitForSlot(options.group, tryAcquire, deadline, options.signal)) ?? result;
    }
    if (result === null || result.node === null) {
      return { kind: 'rejected', reason: result?.reason === 'circuit' ? 'circuit' : 'capacity', waited };
    }
    const lease: Lease = { node: result.node, leaseId, probe: result.probe };
    this.keeper.add(lease);
    if (options.signal.aborted) {
      // The client left while the slot was being acquired: give it straight back.
      await this.release(lease, 'neutral');
      throw options.signal.reason;
    }
    return { kind: 'placed', lease };
  }

  /** Frees the slot and records the outcome; a store error is logged, the lease then expires by itself. */
  async release(lease: Lease, outcome: AttemptOutcome): Promise<void> {
    this.keeper.remove(lease.leaseId);
    this.options.onReleased?.(lease.node);
    try {
      await this.store.releaseSlot({ node: lease.node, leaseId: lease.leaseId, outcome, probe: lease.probe, breaker: this.options.breaker });
    } catch (error) {
      this.options.onError(error);
    }
  }
}
