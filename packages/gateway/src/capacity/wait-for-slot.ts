import type { AcquireSlotResult, NodeId, StateStore } from '@ai-lb/shared';

/** How often waiters retry when no slot-freed message arrives (a missed one, another replica's expiry). */
const POLL_MS = 25;

interface Waiter {
  /** Waiters with the same group compete for the same nodes (same model and candidates). */
  group: string;
  tryAcquire: () => Promise<AcquireSlotResult>;
  deadlineMs: number;
  signal: AbortSignal;
  resolve: (result: AcquireSlotResult | null) => void;
  reject: (error: unknown) => void;
}

/**
 * QUEUE_TIMEOUT_MS: requests that found every eligible node full wait here for a slot,
 * first come first served within this process (per group). A waiter retries acquireSlot
 * when any process frees a slot (onSlotFreed) and every POLL_MS. Across replicas the
 * order is only approximately FIFO: each replica's head waiter races the others'.
 */
export class SlotWaitQueue {
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private pumping = false;
  private pumpAgain = false;

  constructor(
    private readonly store: StateStore,
    private readonly clock: () => number = Date.now,
  ) {}

  hasWaiters(group: string): boolean {
    return this.waiters.some((w) => w.group === group);
  }

  /** Resolves with the acquired (or circuit-rejected) result, or null when the deadline passed. */
  waitForSlot(group: string, tryAcquire: () => Promise<AcquireSlotResult>, deadlineMs: number, signal: AbortSignal): Promise<AcquireSlotResult | null> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      this.waiters.push({ group, tryAcquire, deadlineMs, signal, resolve, reject });
      this.ensureRunning();
    });
  }

  private ensureRunning(): void {
    if (this.timer !== undefined) return;
    this.unsubscribe = this.store.onSlotFreed((_node: NodeId) => void this.pump());
    this.timer = setInterval(() => void this.pump(), POLL_MS);
  }

  private stopWhenIdle(): void {
    if (this.waiters.length > 0 || this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
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
      } while (this.pumpAgain && this.waiters.length > 0);
    } finally {
      this.pumping = false;
      this.stopWhenIdle();
    }
  }

  private async pass(): Promise<void> {
    const full = new Set<string>();
    for (const waiter of [...this.waiters]) {
      if (waiter.signal.aborted) this.settle(waiter, () => waiter.reject(waiter.signal.reason));
      else if (this.clock() >= waiter.deadlineMs) this.settle(waiter, () => waiter.resolve(null));
      // A later waiter of a group whose head found no room must not overtake it.
      else if (!full.has(waiter.group)) {
        try {
          const result = await waiter.tryAcquire();
          if (result.reason === 'capacity') full.add(waiter.group);
          else this.settle(waiter, () => waiter.resolve(result));
        } catch (error) {
          this.settle(waiter, () => waiter.reject(error));
        }
      }
    }
  }

  private settle(waiter: Waiter, action: () => void): void {
    const at = this.waiters.indexOf(waiter);
    if (at !== -1) this.waiters.splice(at, 1);
    action();
  }

  close(): void {
    for (const waiter of [...this.waiters]) this.settle(waiter, () => waiter.resolve(null));
    this.stopWhenIdle();
  }
}
