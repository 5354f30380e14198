import type { LeaseRef, StateStore } from '@ai-lb/shared';

/**
 * Keeps this process's slot leases alive: one renewLeases batch for all of them every
 * leaseMs/3, so a long stream keeps its slot while a dead replica's slots expire within
 * SLOT_LEASE_SECS. One timer per process, not one per request.
 */
export class LeaseKeeper {
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

  get size(): number {
    return this.held.size;
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
