import type { AcquireSlotResult, NodeId, StateStore } from '@ai-lb/shared';
import type { AbortSignalLike } from '../http/exchange.ts';

/** How often waiters retry when no slot-freed message arrives (a missed one, another replica's expiry). */
const POLL_MS = 25;

export interface WaitRequest {
  /** The store's queue name: waiters of one group compete for the same nodes (model, or model@node). */
  group: string;
  /** This request's ticket in the store's queue (it joined with its first, failed acquire). */
  ticket: string;
  /** One acquireSlot call carrying the ticket. */
  tryAcquire: () => Promise<AcquireSlotResult>;
  deadlineMs: number;
  signal: AbortSignalLike;
}

interface Waiter extends WaitRequest {
  /** An acquireSlot call for this waiter is on its way: its answer decides, not the abort. */
  busy: boolean;
  resolve: (result: AcquireSlotResult | null) => void;
  reject: (error: unknown) => void;
  offAbort: () => void;
  /** Its neighbours in the line while it waits (WaitLine); null at the ends and once it left. */
  prev: Waiter | null;
  next: Waiter | null;
}

/**
 * The waiters in arrival order, linked through themselves: O(1) to join and to leave with a
 * long line, and nothing of a waiter is left behind once it leaves. Not a `Set`: V8 rebuilds
 * a set's table as entries come and go, and a table left in the old generation keeps what it
 * held — here each waiter's request — alive through young-generation collections until a full
 * one (the hot-path rule in docs/architecture.md; the router's `InFlight` follows it too).
 */
export class WaitLine<T extends { prev: T | null; next: T | null }> {
  private head: T | null = null;
  private tail: T | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(item: T): void {
    item.prev = this.tail;
    item.next = null;
    if (this.tail === null) this.head = item;
    else this.tail.next = item;
    this.tail = item;
    this.count++;
  }

  /** False when `item` was not in the line (it left already). */
  delete(item: T): boolean {
    if (!this.has(item)) return false;
    if (item.prev === null) this.head = item.next;
    else item.prev.next = item.next;
    if (item.next === null) this.tail = item.prev;
    else item.next.prev = item.prev;
    item.prev = null;
    item.next = null;
    this.count--;
    return true;
  }

  /** In the line: it has a neighbour before it, or it is the first. */
  has(item: T): boolean {
    return item.prev !== null || this.head === item;
  }

  /** In arrival order; no item may leave during the walk (use toArray for that). */
  *[Symbol.iterator](): Iterator<T> {
    for (let item = this.head; item !== null; item = item.next) yield item;
  }

  /** A copy, in arrival order: callers may make items leave while they walk it. */
  toArray(): T[] {
    return [...this];
  }
}

/**
 * QUEUE_TIMEOUT_MS: requests that found every eligible node full wait here for a slot.
 * The order is the store's: each request holds a ticket in a fleet-wide queue per group
 * (AcquireSlotRequest.queue), so a slot goes to the oldest ticket of ANY replica, and a
 * newcomer never overtakes a waiter. This class only decides WHEN to ask again: when any
 * process frees a slot (onSlotFreed) and every POLL_MS, oldest local waiter first; it keeps
 * the tickets alive (renewQueueTickets every ticketTtlMs/3) and takes a ticket out of the
 * queue at once when its client leaves or its time is up.
 */
export class SlotWaitQueue {
  private readonly waiters = new WaitLine<Waiter>();
  private timer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private pumping = false;
  private pumpAgain = false;

  constructor(
    private readonly store: StateStore,
    private readonly ticketTtlMs: number,
    private readonly clock: () => number = Date.now,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  /** Requests of this process waiting for a slot right now (the queue-length gauge). */
  get size(): number {
    return this.waiters.size;
  }

  /** Requests of this process waiting per queue group (a model, or model@node for ?node=): the dashboard's queue. */
  sizesByGroup(): Map<string, number> {
    const sizes = new Map<string, number>();
    for (const waiter of this.waiters) sizes.set(waiter.group, (sizes.get(waiter.group) ?? 0) + 1);
    return sizes;
  }

  /** Resolves with the acquired (or circuit-rejected) result, or null when the deadline passed. */
  waitForSlot(request: WaitRequest): Promise<AcquireSlotResult | null> {
    return new Promise((resolve, reject) => {
      const { signal } = request;
      if (signal.aborted) {
        this.leave(request);
        return reject(signal.reason);
      }
      const onAbort = () => {
        // Leave the line at once; a call on its way is settled by pass() when it answers.
        if (!waiter.busy) this.settle(waiter, () => reject(signal.reason));
      };
      const offAbort = () => signal.removeEventListener('abort', onAbort);
      // Field by field, not `{ ...request, … }`: no spread-then-new-property on the hot path
      // (docs/architecture.md: on Node 20 it builds a hidden class per call, kept in old space).
      const waiter: Waiter = {
        group: request.group,
        ticket: request.ticket,
        tryAcquire: request.tryAcquire,
        deadlineMs: request.deadlineMs,
        signal,
        busy: false,
        resolve,
        reject,
        offAbort,
        prev: null,
        next: null,
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.ensureRunning();
    });
  }

  private ensureRunning(): void {
    if (this.timer !== undefined) return;
    this.unsubscribe = this.store.onSlotFreed((_node: NodeId) => void this.pump());
    this.timer = setInterval(() => void this.pump(), POLL_MS);
    this.renewTimer = setInterval(() => void this.renewTickets(), Math.max(20, Math.floor(this.ticketTtlMs / 3)));
  }

  private stopWhenIdle(): void {
    if (this.waiters.size > 0 || this.timer === undefined) return;
    clearInterval(this.timer);
    clearInterval(this.renewTimer);
    this.timer = undefined;
    this.renewTimer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** One pass over the waiters in arrival order; at most one pass runs at a time. */
  private async pump(): Promise<void> {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        await this.pass();
      } while (this.pumpAgain && this.waiters.size > 0);
    } finally {
      this.pumping = false;
      this.stopWhenIdle();
    }
  }

  private async pass(): Promise<void> {
    const full = new Set<string>();
    for (const waiter of this.waiters.toArray()) {
      if (!this.waiters.has(waiter)) continue;
      if (this.clock() >= waiter.deadlineMs) this.settle(waiter, () => waiter.resolve(null));
      // The store would say no to a later ticket of a group whose older one found no room.
      else if (!full.has(waiter.group)) await this.tryOne(waiter, full);
    }
  }

  private async tryOne(waiter: Waiter, full: Set<string>): Promise<void> {
    waiter.busy = true;
    let result: AcquireSlotResult;
    try {
      result = await waiter.tryAcquire();
    } catch (error) {
      return this.settle(waiter, () => waiter.reject(error));
    } finally {
      waiter.busy = false;
    }
    // A slot taken for a client that left is handed over anyway: the caller gives it back.
    if (result.node !== null) return this.settle(waiter, () => waiter.resolve(result), false);
    if (waiter.signal.aborted) return this.settle(waiter, () => waiter.reject(waiter.signal.reason));
    if (result.reason === 'capacity') full.add(waiter.group);
    else this.settle(waiter, () => waiter.resolve(result));
  }

  /** Out of the local list and, unless it got its slot (the store dropped it then), out of the store's queue. */
  private settle(waiter: Waiter, action: () => void, leaveStoreQueue = true): void {
    if (!this.waiters.delete(waiter)) return;
    waiter.offAbort();
    if (leaveStoreQueue) this.leave(waiter);
    action();
  }

  private leave({ group, ticket }: { group: string; ticket: string }): void {
    // A ticket that cannot be removed expires by itself within ticketTtlMs.
    this.store.leaveQueue([{ key: group, ticket }]).catch(this.onError);
  }

  private async renewTickets(): Promise<void> {
    if (this.waiters.size === 0) return;
    try {
      await this.store.renewQueueTickets(
        this.waiters.toArray().map((w) => ({ key: w.group, ticket: w.ticket })),
        this.ticketTtlMs,
      );
    } catch (error) {
      this.onError(error);
    }
  }

  close(): void {
    for (const waiter of this.waiters.toArray()) this.settle(waiter, () => waiter.resolve(null));
    this.stopWhenIdle();
  }
}
