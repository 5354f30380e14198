import type { LeaseRef, NodeId, StateStore } from '@ai-lb/shared';
import type { FleetView } from './local-slots.ts';

export interface SlotReservesOptions {
  leaseMs: number;
  /** A lease id unique across every replica on the shared state. */
  newLeaseId: () => string;
  /** Renews the reserved leases with this process's others (the LeaseKeeper). */
  keeper: { add(lease: LeaseRef): void; remove(leaseId: string): void };
  /** How long the store is not asked again after it had no slot to spare. */
  retryMs: number;
  clock: () => number;
  onError: (error: unknown) => void;
}

/** A reserve on a node whose cap is below this would be too small to save a call, or too large a share of it. */
const MIN_RESERVABLE = 16;
const MAX_BLOCK = 16;

/** Slots asked for at a time: an eighth of the cap, up to MAX_BLOCK. */
export function reserveBlock(maxconn: number): number {
  return maxconn < MIN_RESERVABLE ? 0 : Math.min(MAX_BLOCK, Math.floor(maxconn / 8));
}

/** What a reserve leaves free for the other replicas: a quarter of the cap. */
export function reserveKeepFree(maxconn: number): number {
  return Math.ceil(maxconn / 4);
}

interface Reserve {
  node: NodeId;
  maxconn: number;
  /** Lease ids ready to hand out. */
  idle: string[];
  /** Every lease id of this reserve the store counts: idle and handed out. */
  held: Set<string>;
  /** A reserveSlots call is on its way. */
  asking: boolean;
  /** The store had no slot to spare: not asked again before this (clock ms). */
  refusedUntil: number;
  /** A slot was handed out since the last trim. */
  used: boolean;
  /** Slots given back so far: a count read before a give-back reached the store still holds them. */
  returned: number;
}

/**
 * Capped nodes' slots leased ahead in blocks (StateStore.reserveSlots) and handed out by
 * this process, so an attempt on a node far from its cap makes no store call. Exact like a
 * lease per attempt: every attempt still holds a lease the store counts against the cap;
 * the store grants a block only while it leaves a quarter of the cap free, and only
 * through a closed circuit.
 *
 * What it costs the other replicas: slots one replica holds idle are not theirs. That is
 * bounded — a replica keeps at most two blocks idle, only while it used the node since the
 * last trim, and gives every idle slot back once the node is past three quarters full as
 * it sees it or its circuit is not closed (trim runs every report interval) — and it
 * matters only near the cap, where no block is granted.
 *
 * Counts: the store's count of a node includes this process's idle slots, which are not
 * attempts; `idleOf` is what callers take off before they note a count in the fleet cache.
 */
export class SlotReserves {
  private readonly reserves = new Map<NodeId, Reserve>();
  private stopped = false;

  constructor(
    private readonly store: StateStore,
    private readonly fleet: FleetView,
    private readonly options: SlotReservesOptions,
  ) {}

  /** A lease id on `node` from its reserve, or null (then the store decides; more is asked for). */
  take(node: NodeId, maxconn: number): string | null {
    let reserve = this.reserves.get(node);
    if (reserve === undefined) {
      reserve = { node, maxconn, idle: [], held: new Set(), asking: false, refusedUntil: 0, used: false, returned: 0 };
      this.reserves.set(node, reserve);
    } else if (reserve.maxconn !== maxconn) {
      // The cap changed: blocks were sized and granted for the old one.
      this.giveBack(reserve, reserve.idle.length);
      reserve.maxconn = maxconn;
    }
    const leaseId = reserve.idle.pop();
    if (reserve.idle.length < reserveBlock(maxconn) / 2) this.askForMore(reserve);
    if (leaseId === undefined) return null;
    reserve.used = true;
    this.fleet.noteAcquired(node);
    return leaseId;
  }

  /** An attempt on a reserved slot ended: the slot is idle again (or back in the store after stop). */
  putBack(lease: LeaseRef): void {
    this.fleet.noteReleased(lease.node);
    const reserve = this.reserves.get(lease.node);
    if (reserve?.held.has(lease.leaseId) && !this.stopped) reserve.idle.push(lease.leaseId);
    else this.returnToStore(lease.node, [lease.leaseId]);
  }

  /** The reserve's idle slots on `node`: counted by the store, not in flight. */
  idleOf(node: NodeId): number {
    return this.reserves.get(node)?.idle.length ?? 0;
  }

  /** How many slots each reserve had given back by now: pass it to notAttempts with a count read from now on. */
  mark(): Map<NodeId, number> {
    const marks = new Map<NodeId, number>();
    for (const [node, reserve] of this.reserves) marks.set(node, reserve.returned);
    return marks;
  }

  /**
   * What a count of `node` read since `mark` holds that is not an attempt: the idle slots,
   * and the slots given back since (the store may have counted before their return reached it).
   */
  notAttempts(node: NodeId, mark: Map<NodeId, number>): number {
    const reserve = this.reserves.get(node);
    return reserve === undefined ? 0 : reserve.idle.length + reserve.returned - (mark.get(node) ?? 0);
  }

  /** Some node has a reserve: its counts are worth sharing and reading back every interval. */
  active(): boolean {
    return this.reserves.size > 0;
  }

  /** Every report interval: idle slots beyond what use justifies go back. */
  trim(mayPlace: (node: NodeId) => boolean): void {
    for (const reserve of this.reserves.values()) {
      const { node, maxconn, idle } = reserve;
      const crowded = this.fleet.inflightOf(node) >= maxconn - reserveKeepFree(maxconn);
      const keep = reserve.used && !crowded && mayPlace(node) ? 2 * reserveBlock(maxconn) : 0;
      if (idle.length > keep) this.giveBack(reserve, idle.length - keep);
      reserve.used = false;
      if (reserve.held.size === 0 && !reserve.asking) this.reserves.delete(node);
    }
  }

  /** Gives every idle slot back; slots in use go back when their attempts end. */
  stop(): void {
    this.stopped = true;
    for (const reserve of this.reserves.values()) this.giveBack(reserve, reserve.idle.length);
  }

  private askForMore(reserve: Reserve): void {
    const block = reserveBlock(reserve.maxconn);
    if (reserve.asking || this.stopped || block === 0 || reserve.refusedUntil > this.options.clock()) return;
    reserve.asking = true;
    const { node, maxconn } = reserve;
    const { leaseMs, newLeaseId } = this.options;
    const leaseIds = Array.from({ length: block }, newLeaseId);
    this.store.reserveSlots({ node, maxconn, leaseIds, leaseMs, keepFree: reserveKeepFree(maxconn) }).then(
      ({ granted, inflight }) => {
        reserve.asking = false;
        if (granted < block) reserve.refusedUntil = this.options.clock() + this.options.retryMs;
        const got = leaseIds.slice(0, granted);
        if (this.stopped || this.reserves.get(node) !== reserve) return this.returnToStore(node, got);
        for (const leaseId of got) {
          reserve.held.add(leaseId);
          reserve.idle.push(leaseId);
          this.options.keeper.add({ node, leaseId });
        }
        this.fleet.noteInflight({ [node]: inflight - reserve.idle.length });
      },
      (error: unknown) => {
        reserve.asking = false;
        reserve.refusedUntil = this.options.clock() + this.options.retryMs;
        this.options.onError(error);
      },
    );
  }

  private giveBack(reserve: Reserve, count: number): void {
    if (count <= 0) return;
    const ids = reserve.idle.splice(reserve.idle.length - count, count);
    for (const leaseId of ids) reserve.held.delete(leaseId);
    reserve.returned += count;
    this.returnToStore(reserve.node, ids);
  }

  private returnToStore(node: NodeId, leaseIds: string[]): void {
    if (leaseIds.length === 0) return;
    for (const leaseId of leaseIds) this.options.keeper.remove(leaseId);
    this.store.returnSlots(leaseIds.map((leaseId) => ({ node, leaseId }))).catch(this.options.onError);
  }
}
