/**
 * CACHE_AFFINITY: consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam,
 * "Consistent Hashing with Bounded Loads", 2017). A request's affinity key (affinity-key.ts)
 * picks its home node on the ring (hash-ring.ts); the home node keeps the key while its
 * load is under
 *
 *     bound(node) = max(c × (total load + 1) / nodes, floor(node))
 *
 * and past that the key passes to the next node clockwise that is under its bound. So one
 * conversation keeps hitting the node that has its KV cache until that node is really
 * busier than the rest, and a hot key cannot pile onto one node.
 *
 *  - c = AFFINITY_LOAD_FACTOR = 1.25: a node may run 25 % above the fleet's average before
 *    it sheds keys. The paper's trade-off: smaller c evens load out but moves more keys
 *    (fewer cache hits); 1.25 is the value of liblb's bounded-load balancer (HAProxy
 *    exposes the same knob as hash-balance-factor).
 *  - floor = the node's slot count (its cap, else what the engine reported): at light load
 *    every busy node is "above the average" (one request on a node of an otherwise idle
 *    fleet of 3 is 3× the mean), so without a floor affinity would never hold. A node keeps
 *    its keys while it has a free slot. Where the slot count is unknown (vLLM does not
 *    expose --max-num-seqs), a fresh engine reading that shows no queue counts as a free
 *    slot; with neither, the floor is AFFINITY_MIN_FLOOR requests.
 *
 * Load is the engine-aware one (ai-lb's in-flight + requests from elsewhere). The order:
 *  1. a cold node (the engine lists the model as not loaded) goes after the others while
 *     some warm node has a free slot — or a cap, which the store checks on live counts as
 *     it walks the order: affinity never triggers an avoidable model load;
 *  2. nodes under their bound before nodes over it — the bound, not a busy slot, decides
 *     when a key moves: a home node whose slots are busy while the fleet is as busy still
 *     keeps its keys (its cache is worth the wait);
 *  3. NODE_PRIORITY, lower first: keys spread over the preferred machines and pass to the
 *     others once those are over their bound;
 *  4. the ring walk — starting at the node this process last sent the key to, when it is
 *     still a candidate: that node, not the ring's, holds the conversation's prefix cache
 *     once the key had to pass on (AffinityHomes). Without it a conversation pushed off its
 *     home by the bound goes back there at its next turn and pays the whole prefill twice.
 * Deterministic: every replica with the same view of the fleet (and the same last node for
 * the key) sends the same key to the same node.
 */
import { isFull, totalLoad, type EngineAwareCandidate } from './engine-candidate.ts';
import type { NodeId } from '@ai-lb/shared';
import { hash32, type HashRing } from './hash-ring.ts';

export const AFFINITY_LOAD_FACTOR = 1.25;
/** A node that tells nothing of its capacity keeps its keys while it has fewer requests than this. */
export const AFFINITY_MIN_FLOOR = 1;

export interface AffinityOptions {
  loadFactor?: number;
  /** The node this key was last sent to (AffinityHomes.get), walked first; ignored when not a candidate. */
  lastNode?: NodeId | null;
}

/** Keys whose last node a process remembers: a conversation's, for as long as it is among the most recent ones. */
export const AFFINITY_HOMES_LIMIT = 10_000;

/**
 * The node each affinity key was last sent to, the most recent AFFINITY_HOMES_LIMIT keys
 * (a Map keeps insertion order: re-inserting a key makes it the newest, the oldest goes first).
 */
export class AffinityHomes {
  private readonly homes = new Map<string, NodeId>();

  constructor(private readonly limit = AFFINITY_HOMES_LIMIT) {}

  get(key: string): NodeId | undefined {
    return this.homes.get(key);
  }

  note(key: string, node: NodeId): void {
    this.homes.delete(key);
    this.homes.set(key, node);
    if (this.homes.size > this.limit) this.homes.delete(this.homes.keys().next().value as string);
  }

  get size(): number {
    return this.homes.size;
  }
}

/** The load a node may carry and still keep its keys. */
export function affinityBound(
  candidate: EngineAwareCandidate,
  candidates: readonly EngineAwareCandidate[],
  loadFactor = AFFINITY_LOAD_FACTOR,
): number {
  let total = 0;
  for (const c of candidates) total += totalLoad(c);
  const average = (total + 1) / Math.max(1, candidates.length);
  return Math.max(loadFactor * average, affinityFloor(candidate));
}

/** The load below which a node keeps its keys whatever the fleet's average. */
export function affinityFloor(candidate: EngineAwareCandidate): number {
  if (candidate.slots !== null && candidate.slots > 0) return candidate.slots;
  // The engine queues nothing: it starts a new request at once, like a node with a free slot.
  if (candidate.engine !== null && candidate.engine.waiting === 0) return totalLoad(candidate) + 1;
  return AFFINITY_MIN_FLOOR;
}

/**
 * Every candidate, best first, for one request with affinity key `key`. `ring` must be
 * built over exactly the candidates' nodes (HashRingCache.ringFor).
 */
export function orderByCacheAffinity<T extends EngineAwareCandidate>(
  candidates: readonly T[],
  key: string,
  ring: HashRing,
  options: AffinityOptions = {},
): T[] {
  const byNode = new Map(candidates.map((c) => [c.node, c]));
  const last = options.lastNode ?? null;
  const walk = ring.walk(hash32(key)).flatMap((node) => {
    const candidate = byNode.get(node);
    return candidate === undefined || node === last ? [] : [candidate];
  });
  const lastCandidate = last === null ? undefined : byNode.get(last);
  if (lastCandidate !== undefined) walk.unshift(lastCandidate);
  // Candidates the ring does not know (a caller bug) go last rather than vanish.
  for (const c of candidates) if (!ring.nodes.includes(c.node)) walk.push(c);
  const over = new Set(walk.filter((c) => totalLoad(c) >= affinityBound(c, candidates, options.loadFactor)).map((c) => c.node));
  // A capped node's room is the store's to judge: it walks this order on live counts and
  // skips a node at its cap, while the cache's count of a capped node lags its releases by
  // up to a refresh (a warm node that just freed a slot would look full, and a cold one
  // would load the model for nothing).
  const warmWithRoom = walk.some((c) => c.warm === true && (c.maxconn > 0 || !isFull(c)));
  const rank = (c: T) => [warmWithRoom && c.warm === false ? 1 : 0, over.has(c.node) ? 1 : 0, c.priority];
  const position = new Map(walk.map((c, i) => [c.node, i]));
  return [...walk].sort((a, b) => {
    const [ra, rb] = [rank(a), rank(b)];
    return ra[0] - rb[0] || ra[1] - rb[1] || ra[2] - rb[2] || position.get(a.node)! - position.get(b.node)!;
  });
}
