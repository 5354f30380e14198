/**
 * Consistent hashing: every node owns many points (virtual nodes) on a 32-bit ring; a key
 * belongs to the first node clockwise from its own point. When a node joins or leaves,
 * only the keys it gains or loses move (about 1/n of them); every other key keeps its
 * node, and with it that node's prefix cache. Points come from SHA-1 of the node id, so
 * every gateway replica builds the same ring from the same node set.
 */
import { createHash } from 'node:crypto';
import type { NodeId } from '@ai-lb/shared';

/** Points per node: enough that each of a few to ten nodes owns close to its fair share of keys (hash-ring.test.ts). */
export const VIRTUAL_NODES = 160;

/** A stable 32-bit hash (the first 4 bytes of SHA-1). */
export function hash32(text: string): number {
  return createHash('sha1').update(text).digest().readUInt32BE(0);
}

export class HashRing {
  readonly nodes: readonly NodeId[];
  private readonly points: Uint32Array;
  private readonly owners: NodeId[];

  constructor(nodes: readonly NodeId[], virtualNodes = VIRTUAL_NODES) {
    this.nodes = [...new Set(nodes)].sort();
    const entries: [number, NodeId][] = [];
    for (const node of this.nodes) for (let v = 0; v < virtualNodes; v++) entries.push([hash32(`${node}#${v}`), node]);
    // Ties (two nodes on one point) break by node id, so every replica orders them alike.
    entries.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    this.points = Uint32Array.from(entries.map((e) => e[0]));
    this.owners = entries.map((e) => e[1]);
  }

  /** Every node, in the order met walking clockwise from the key's point: the owner first. */
  walk(keyHash: number): NodeId[] {
    const order: NodeId[] = [];
    if (this.points.length === 0) return order;
    const seen = new Set<NodeId>();
    const start = this.firstPointAtOrAfter(keyHash >>> 0);
    for (let i = 0; i < this.points.length && order.length < this.nodes.length; i++) {
      const owner = this.owners[(start + i) % this.points.length];
      if (!seen.has(owner)) {
        seen.add(owner);
        order.push(owner);
      }
    }
    return order;
  }

  private firstPointAtOrAfter(value: number): number {
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid] < value) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.points.length ? 0 : lo;
  }
}

/**
 * Rings by node set, so a request does not rebuild one (160 hashes per node). Bounded: the
 * sets a gateway sees are the fleet's nodes per model, a handful; past the limit the cache
 * starts over.
 */
export class HashRingCache {
  private readonly rings = new Map<string, HashRing>();

  constructor(private readonly maxRings = 256) {}

  ringFor(nodes: readonly NodeId[]): HashRing {
    const key = [...nodes].sort().join('\n');
    let ring = this.rings.get(key);
    if (ring === undefined) {
      if (this.rings.size >= this.maxRings) this.rings.clear();
      ring = new HashRing(nodes);
      this.rings.set(key, ring);
    }
    return ring;
  }
}
