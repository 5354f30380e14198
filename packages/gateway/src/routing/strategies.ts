import type { AcquireOrder, NodeId, RoutingStrategy, SlotCandidate } from '@ai-lb/shared';

/** One node a request may go to, with what the fleet cache knows of its load. */
export interface RoutingCandidate {
  node: NodeId;
  maxconn: number;
  /** Fleet-wide in-flight count as last seen (cache; live counts are the store's business). */
  inflight: number;
  /** Observed upstream latency (EWMA), else the monitor's probe latency, else null. */
  latencyMs: number | null;
  /** Consecutive failures recorded in the node's circuit. */
  failures: number;
}

/** What one acquireSlot call gets: the candidates and how the store walks them. */
export interface AcquirePlan {
  candidates: SlotCandidate[];
  order: AcquireOrder;
  rotateKey?: string;
}

export interface PlanContext {
  strategy: RoutingStrategy;
  /** The round-robin counter for the model (shared by replicas through the store). */
  rotateKey: string;
  /** The node the previous attempt of this request went to; null on the first attempt. */
  previousNode: NodeId | null;
  /** Injected so tests are deterministic. */
  random: () => number;
}

type Plan = (candidates: readonly RoutingCandidate[], ctx: PlanContext) => AcquirePlan;

const slots = (list: readonly RoutingCandidate[]): SlotCandidate[] => list.map(({ node, maxconn }) => ({ node, maxconn }));

/**
 * One plan per ROUTING_STRATEGY; each orders candidates for one attempt, with no I/O and no
 * side effects. The store applies `least_loaded` and `rotate` itself, on live counts, so the
 * order those two give is exact across replicas; the others hand it a finished order.
 */
export const STRATEGY_PLANS: Record<RoutingStrategy, Plan> = {
  ROUND_ROBIN: (candidates, ctx) =>
    ctx.previousNode === null
      ? { candidates: slots(candidates), order: 'rotate', rotateKey: ctx.rotateKey }
      : // A retry continues the rotation after the failed node without consuming a turn.
        { candidates: slots(rotateAfter(candidates, ctx.previousNode)), order: 'in_order' },
  RANDOM: (candidates, ctx) => ({ candidates: slots(shuffle(candidates, ctx.random)), order: 'in_order' }),
  // The store sorts by live load with ties in the given order: shuffling first spreads an
  // idle fleet instead of sending every lone request to the lowest node id.
  LEAST_LOADED: (candidates, ctx) => ({ candidates: slots(shuffle(candidates, ctx.random)), order: 'least_loaded' }),
  P2C: (candidates, ctx) => ({ candidates: slots(powerOfTwoChoices(candidates, ctx.random)), order: 'in_order' }),
};

/**
 * The plan of the configured strategy. `candidates` come sorted by node id, so the
 * round-robin index means the same node on every replica, and fleet changes of other models
 * never move it.
 */
export function planAcquire(candidates: readonly RoutingCandidate[], ctx: PlanContext): AcquirePlan {
  return STRATEGY_PLANS[ctx.strategy](candidates, ctx);
}

/** Candidates starting with the first node id after `previous` (ids are sorted), wrapping. */
export function rotateAfter<T extends { node: NodeId }>(candidates: readonly T[], previous: NodeId): T[] {
  const start = candidates.findIndex((c) => c.node > previous);
  if (start <= 0) return [...candidates];
  return [...candidates.slice(start), ...candidates.slice(0, start)];
}

export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Two random candidates, the cheaper first; the rest follow by cost, so acquireSlot still
 * has somewhere to go when both are full.
 */
export function powerOfTwoChoices(candidates: readonly RoutingCandidate[], random: () => number): RoutingCandidate[] {
  if (candidates.length <= 1) return [...candidates];
  const a = Math.floor(random() * candidates.length);
  let b = Math.floor(random() * (candidates.length - 1));
  if (b >= a) b++;
  const [first, second] = p2cCost(candidates[b]) < p2cCost(candidates[a]) ? [b, a] : [a, b];
  const rest = candidates.filter((_, i) => i !== first && i !== second).sort(byCost);
  return [candidates[first], candidates[second], ...rest];
}

/** Infinity - Infinity is NaN: compare, do not subtract. */
function byCost(x: RoutingCandidate, y: RoutingCandidate): number {
  const a = p2cCost(x);
  const b = p2cCost(y);
  return a === b ? 0 : a < b ? -1 : 1;
}

/** How much a second of latency weighs against one unit of load (a full node = 1). */
const LATENCY_SCALE_MS = 1000;
/** Each recent failure weighs as much as a completely full node. */
const FAILURE_PENALTY = 1;

/**
 * Lower is better. Load is the fill ratio for capped nodes (raw count when uncapped, as
 * the store's least_loaded does); a node at its cap goes last since it cannot take the request.
 */
export function p2cCost(c: RoutingCandidate): number {
  if (c.maxconn > 0 && c.inflight >= c.maxconn) return Number.POSITIVE_INFINITY;
  const load = c.maxconn > 0 ? c.inflight / c.maxconn : c.inflight;
  return load + (c.latencyMs ?? 0) / LATENCY_SCALE_MS + c.failures * FAILURE_PENALTY;
}
