import type { NodeId } from '@ai-lb/shared';

/** A Retry-After longer than this is capped: one odd header must not bench a node for hours. */
export const MAX_COOLDOWN_MS = 60_000;

/**
 * Retry-After across requests: a node that answered 429 with Retry-After is left out of
 * new requests' candidates until that time (SPEC: "an upstream Retry-After is honoured"),
 * not just within the request that got it. Per gateway process, in memory: a hint, not a
 * contract — the breaker in the state store is what replicas share. Reads are one Map
 * lookup on the hot path, and only while some node is cooling down.
 */
export class NodeCooldowns {
  private readonly until = new Map<NodeId, number>();

  constructor(private readonly clock: () => number) {}

  note(node: NodeId, untilMs: number): void {
    const capped = Math.min(untilMs, this.clock() + MAX_COOLDOWN_MS);
    if (capped > (this.until.get(node) ?? 0)) this.until.set(node, capped);
  }

  /** The candidates not cooling down, or all of them when every one is (their 429s then speak for themselves). */
  filter<T extends { node: NodeId }>(candidates: T[]): T[] {
    if (this.until.size === 0) return candidates;
    const now = this.clock();
    for (const [node, until] of this.until) if (until <= now) this.until.delete(node);
    const ready = candidates.filter((c) => !this.until.has(c.node));
    return ready.length > 0 ? ready : candidates;
  }
}
