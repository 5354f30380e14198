/**
 * Ids with an expiry each (a lease, a queue ticket): the in-memory twin of a Redis sorted
 * set scored by expiry. An id is live while now <= its expiry. Map order is insertion
 * order, so a queue's ids stay in arrival order (set() on a live id keeps its place).
 *
 * Expired ids are dropped in one sweep, and only once the earliest expiry may have passed:
 * a sweep on every read made each acquire cost O(leases) in allocations and time, so 1,000
 * open streams cost O(n²) per round of acquires and renewals (docs/performance.md). `sweepAfterMs` is a lower bound on every expiry held; renewals only move
 * expiries later, so it stays one, and a stale bound costs one extra sweep at most.
 */
export class ExpiringIds {
  private readonly expiries = new Map<string, number>();
  private sweepAfterMs = Infinity;

  /** Live ids. */
  size(now: number): number {
    this.sweep(now);
    return this.expiries.size;
  }

  has(id: string, now: number): boolean {
    this.sweep(now);
    return this.expiries.has(id);
  }

  /** Adds the id, or moves its expiry (its place in the order is kept). */
  set(id: string, expiresAtMs: number): void {
    this.expiries.set(id, expiresAtMs);
    if (expiresAtMs < this.sweepAfterMs) this.sweepAfterMs = expiresAtMs;
  }

  delete(id: string): void {
    this.expiries.delete(id);
  }

  /** How many live ids came before this one; -1 when it is not live. */
  rank(id: string, now: number): number {
    this.sweep(now);
    let rank = 0;
    for (const key of this.expiries.keys()) {
      if (key === id) return rank;
      rank++;
    }
    return -1;
  }

  private sweep(now: number): void {
    if (now <= this.sweepAfterMs) return;
    let earliest = Infinity;
    this.expiries.forEach((expiresAtMs, id) => {
      if (expiresAtMs < now) this.expiries.delete(id);
      else if (expiresAtMs < earliest) earliest = expiresAtMs;
    });
    this.sweepAfterMs = earliest;
  }
}
