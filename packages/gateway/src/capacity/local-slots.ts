import {
  type AttemptOutcome,
  type CircuitState,
  type LeaseRef,
  type NodeId,
  type NodeOutcomes,
  type StateStore,
  firstInPlan,
} from '@ai-lb/shared';
import type { AcquirePlan } from '../routing/routing-rules.ts';
import type { Lease } from './slot-leases.ts';
import { reserveBlock, SlotReserves, type SlotReservesOptions } from './slot-reserves.ts';

/** What placement reads from the fleet cache, and what it tells it. */
export interface FleetView {
  /** The cached circuit (the store announces every opening, so it is at most a refresh old). */
  circuit(id: NodeId): { state: CircuitState };
  /** Fleet-wide in flight as last seen: leases, other replicas' reports and this process's own. */
  inflightOf(id: NodeId): number;
  nodes(): readonly { node: NodeId }[];
  noteInflight(counts: Record<NodeId, number>): void;
  noteAcquired(id: NodeId): void;
  noteReleased(id: NodeId): void;
}

export interface LocalSlotsOptions {
  /** Unique per gateway: the key of this replica's in-flight report. */
  replicaId: string;
  /** How often in-flight counts are shared and successes reported; failures go at once. */
  reportIntervalMs: number;
  breaker: { threshold: number; ttlMs: number };
  clock: () => number;
  onError: (error: unknown) => void;
  /** Capped nodes' slots in blocks (SlotReserves); without, every capped attempt goes to the store. */
  reserves?: Pick<SlotReservesOptions, 'leaseMs' | 'newLeaseId' | 'keeper'>;
}

/** An idle replica still reads the others' counts this often (in report intervals). */
const IDLE_SHARE_INTERVALS = 10;
/**
 * How long a node that failed THRESHOLD times in a row here goes to the store instead:
 * long enough for the store's answer (the circuit opened, announced) to reach the fleet
 * cache, which then keeps the node away by its circuit; short enough that a node the store
 * did not open (other replicas' successes came between) comes back soon.
 */
const DOUBT_MS = 1000;

/**
 * Attempts placed by this process without asking the store: on nodes with no cap, and on
 * capped nodes' slots this process holds in a reserve (SlotReserves). An uncapped node has
 * no slot to count fleet-wide, and a reserved slot was counted when the block was granted,
 * so the only shared state such an attempt touches is the node's circuit, and the circuit
 * takes outcomes in batches:
 *  - SlotLeases asks here only when there is no sticky session; a plan is placed here only
 *    when every candidate's cached circuit is closed and every capped candidate may have a
 *    reserve, and the node the plan picks is uncapped or has a reserved slot idle. Anything
 *    else (the half-open probe, a sticky session, a full reserve, a queue) goes to the
 *    store's acquireSlot, which decides exactly;
 *  - the order is the plan's: least_loaded by the fleet cache's counts (this process's own
 *    are exact, other replicas' are one report interval old), rotate by a counter per model
 *    in this process (each replica spreads evenly, so the fleet does);
 *  - every reportIntervalMs this process shares its counts (shareInflight) and reads back
 *    everyone else's, and reports its outcomes (recordOutcomes). A failure is reported at
 *    the end of its event-loop turn, not at the next interval: failures are rare, and a dead
 *    node must open its circuit after THRESHOLD failures fleet-wide, not after a batch of
 *    them. A node that failed THRESHOLD times in a row here goes to the store for
 *    DOUBT_MS, so this process never outruns the circuit on stale news.
 */
export class LocalSlots {
  /** In flight per node, placed here; a node at 0 is removed. */
  private readonly counts = new Map<NodeId, number>();
  /** Round-robin position per rotate key (model); bounded by the models. */
  private readonly rotation = new Map<string, number>();
  /** Outcomes since the last report, per node. */
  private pending = new Map<NodeId, NodeOutcomes>();
  /** Consecutive failures per node of the attempts placed here. */
  private readonly failureRuns = new Map<NodeId, number>();
  /** Nodes that failed THRESHOLD times in a row here: until when the store decides for them. */
  private readonly doubted = new Map<NodeId, number>();
  private flushScheduled = false;
  private countsChanged = false;
  private idleIntervals = 0;
  private sharing = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly reserves: SlotReserves | null;
  private readonly inflightOf = (id: NodeId) => this.fleet.inflightOf(id);

  constructor(
    private readonly store: StateStore,
    private readonly fleet: FleetView,
    private readonly options: LocalSlotsOptions,
  ) {
    const { clock, onError, reportIntervalMs } = options;
    this.reserves = options.reserves
      ? new SlotReserves(store, fleet, { ...options.reserves, clock, onError, retryMs: reportIntervalMs })
      : null;
  }

  start(): void {
    this.timer = setInterval(this.onInterval, this.options.reportIntervalMs);
    this.timer.unref();
  }

  /** Reports what is pending and withdraws this replica's counts (its attempts are over). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.flushOutcomes();
    this.reserves?.stop();
    this.counts.clear();
    this.countsChanged = true;
    void this.share();
  }

  /** The lease for an attempt that needs no shared decision, or null: then the store decides. */
  place(plan: AcquirePlan): Lease | null {
    const { candidates } = plan;
    const n = candidates.length;
    if (n === 0) return null;
    const { reserves } = this;
    for (let i = 0; i < n; i++) {
      const { node, maxconn } = candidates[i];
      if ((maxconn !== 0 && (reserves === null || reserveBlock(maxconn) === 0)) || !this.mayPlace(node)) return null;
    }
    // The order the store would walk (slot-rules): live counts plus the engine hints of the plan.
    let rotateCounter = 1;
    if (plan.order === 'rotate') {
      const key = plan.rotateKey ?? '';
      rotateCounter = (this.rotation.get(key) ?? 0) + 1;
      this.rotation.set(key, rotateCounter);
    }
    const at = firstInPlan(candidates, plan.order, this.inflightOf, rotateCounter);
    const { node, maxconn } = candidates[at];
    if (maxconn !== 0) {
      const leaseId = reserves!.take(node, maxconn);
      return leaseId === null ? null : { node, leaseId, probe: false, local: true };
    }
    this.counts.set(node, (this.counts.get(node) ?? 0) + 1);
    this.countsChanged = true;
    this.fleet.noteAcquired(node);
    return { node, leaseId: '', probe: false, local: true };
  }

  /** An attempt placed by place() ended: counted down (or its reserved slot idle again), its outcome kept for the next report. */
  release(lease: LeaseRef, outcome: AttemptOutcome): void {
    const { node } = lease;
    if (lease.leaseId !== '') this.reserves?.putBack(lease);
    else {
      const count = (this.counts.get(node) ?? 1) - 1;
      if (count > 0) this.counts.set(node, count);
      else this.counts.delete(node);
      this.countsChanged = true;
      this.fleet.noteReleased(node);
    }
    if (outcome !== 'neutral') this.noteOutcome(node, outcome === 'success');
  }

  /** Slots of `node` this process holds idle in a reserve: in the store's count, not in flight. */
  idleOf(node: NodeId): number {
    return this.reserves?.idleOf(node) ?? 0;
  }

  private noteOutcome(node: NodeId, success: boolean): void {
    let batch = this.pending.get(node);
    if (batch === undefined) {
      batch = { node, leadingFailures: 0, succeeded: false, trailingFailures: 0 };
      this.pending.set(node, batch);
    }
    if (success) {
      this.failureRuns.delete(node);
      batch.succeeded = true;
      batch.trailingFailures = 0;
      return;
    }
    if (batch.succeeded) batch.trailingFailures++;
    else batch.leadingFailures++;
    const run = (this.failureRuns.get(node) ?? 0) + 1;
    if (run < this.options.breaker.threshold) this.failureRuns.set(node, run);
    else {
      this.failureRuns.delete(node);
      this.doubted.set(node, this.options.clock() + DOUBT_MS);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushOutcomes);
    }
  }

  /** Closed circuit as far as the cache knows, and not just failing here. */
  private mayPlace(node: NodeId): boolean {
    if (this.fleet.circuit(node).state !== 'closed') return false;
    if (this.doubted.size === 0) return true;
    const until = this.doubted.get(node);
    if (until === undefined) return true;
    if (until > this.options.clock()) return false;
    this.doubted.delete(node);
    return true;
  }

  private readonly onInterval = (): void => {
    this.flushOutcomes();
    this.reserves?.trim(this.mayPlaceNode);
    if (this.countsChanged || this.counts.size > 0 || this.reserves?.active() || ++this.idleIntervals >= IDLE_SHARE_INTERVALS) {
      void this.share();
    }
  };

  private readonly mayPlaceNode = (node: NodeId): boolean => this.mayPlace(node);

  /** Sends the pending outcomes; in order, on the store's one connection, so batches apply as they were made. */
  private readonly flushOutcomes = (): void => {
    this.flushScheduled = false;
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    this.store.recordOutcomes(batch, this.options.breaker).catch(this.options.onError);
  };

  /** Shares this replica's counts and hands the fleet-wide picture to the fleet cache. */
  private async share(): Promise<void> {
    // A slow store must not stack reports on top of each other.
    if (this.sharing) return;
    this.sharing = true;
    this.countsChanged = false;
    this.idleIntervals = 0;
    const { replicaId, reportIntervalMs } = this.options;
    try {
      const nodes = this.fleet.nodes().map((n) => n.node);
      const counts = Object.fromEntries(this.counts);
      // A few intervals: a replica that dies stops counting soon, a slow tick does not drop the report.
      const ttlMs = Math.max(1000, 10 * reportIntervalMs);
      const mark = this.reserves?.mark();
      const others = await this.store.shareInflight({ replicaId, counts, ttlMs, nodes });
      // Attempts placed while the answer travelled are counted: the counts are read now.
      for (const [node, count] of this.counts) if (node in others) others[node] += count;
      if (mark !== undefined) for (const node in others) others[node] -= this.reserves!.notAttempts(node, mark);
      this.fleet.noteInflight(others);
    } catch (error) {
      this.options.onError(error);
    } finally {
      this.sharing = false;
    }
  }
}
