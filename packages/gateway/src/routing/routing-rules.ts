import {
  GatewayError,
  type AcquireOrder,
  type AutoModelStrategy,
  type NodeId,
  type RoutingStrategy,
  type SlotCandidate,
} from '@ai-lb/shared';
import { orderByCacheAffinity } from './cache-affinity.ts';
import type { EngineAwareCandidate } from './engine-candidate.ts';
import { powerOfTwoByEngineLoad } from './engine-load-ranking.ts';
import type { HashRingCache } from './hash-ring.ts';

/**
 * The gateway's routing rules, pure (no I/O, no side effects, injected randomness): which
 * concrete model a request means (model resolution), and in which order a request's
 * candidate nodes are tried (the ROUTING_STRATEGY plans). The store applies a plan's order
 * with live counts; the fleet cache feeds both with what it knows.
 */

// ---- model resolution ------------------------------------------------------------------
/** What model resolution needs to know about one node; built from the fleet cache. */
export interface ModelNodeView {
  models: readonly string[];
  healthy: boolean;
  /** Healthy, circuit not open and below its cap as far as the cache knows. */
  eligible: boolean;
}

export interface ResolveModelInput {
  /** The request's `model`; undefined when the body has none. */
  requested: string | undefined;
  /** Missing model falls back to LM_MODEL (chat); embeddings pass false. */
  fallbackToLmModel: boolean;
  sentinels: readonly string[];
  lmModel: string | undefined;
  preferred: readonly string[];
  strategy: AutoModelStrategy;
  /** `?require_all=true`: behaves as intersection_first for this request. */
  requireAll: boolean;
  /**
   * The id some known node lists for this name: the name itself, else the first id equal to
   * it ignoring case (in node order); undefined when none. An index lookup, never a scan.
   */
  knownModel: (name: string) => string | undefined;
  /**
   * Nodes in a stable order (by node id), so "first available" means the same on every
   * replica. A function: only sentinels and near-misses need the whole fleet.
   */
  nodes: () => readonly ModelNodeView[];
  /**
   * Whether the fleet is complete (a live monitor has scanned every target since it took
   * over): only then is a model no node lists a 404; otherwise 503 no_fleet with this
   * Retry-After — the model may be on a server nobody has looked at yet. Asked only for an
   * unknown name.
   */
  fleetAuthoritative: () => boolean;
  retryAfterSecs: number;
  /**
   * Whether the name is a MODEL_ALIASES alias some node serves: LM_MODEL may name one (a
   * body without `model` then means the alias, not "any model").
   */
  isServedAlias?: (name: string) => boolean;
}

export interface ResolvedModel {
  model: string;
  /** The request named a sentinel (or LM_MODEL) rather than a concrete id. */
  viaSentinel: boolean;
}

/**
 * Model resolution, pure. A sentinel resolves to a model with an eligible node
 * (falling back to one with merely a healthy node, so a full fleet yields 429 rather than
 * 404); a concrete id must be served by some known node, else 404 at once.
 */
export function resolveModel(input: ResolveModelInput): ResolvedModel {
  const requested = input.requested ?? (input.fallbackToLmModel ? input.lmModel : undefined);
  if (requested === undefined || requested.trim() === '') {
    throw new GatewayError('invalid_request', 'you must provide a model parameter', { param: 'model' });
  }
  if (input.isServedAlias?.(requested) === true) return { model: requested, viaSentinel: false };
  const lower = requested.toLowerCase();
  const isLmModel = input.lmModel !== undefined && input.lmModel.toLowerCase() === lower;
  if (input.sentinels.some((s) => s.toLowerCase() === lower) || isLmModel) {
    return { model: resolveSentinel(input), viaSentinel: true };
  }
  // Model ids are case-sensitive upstream, but "Llama3" for "llama3" is an obvious intent.
  const known = input.knownModel(requested);
  if (known !== undefined) return { model: known, viaSentinel: false };
  const shown = requested.length > 200 ? `${requested.slice(0, 200)}…` : requested;
  if (!input.fleetAuthoritative()) {
    throw new GatewayError(
      'no_fleet',
      `no known node serves the model '${shown}', but the fleet is not known in full right now (no monitor has completed a scan since it took over)`,
      { param: 'model', headers: { 'retry-after': String(input.retryAfterSecs) } },
    );
  }
  throw new GatewayError('model_not_found', `The model '${shown}' does not exist or no known node serves it`, {
    param: 'model',
  });
}

function resolveSentinel(input: ResolveModelInput): string {
  // LM_MODEL, when some node serves it, is the natural first choice for "the default model".
  const preferred = input.lmModel !== undefined ? [input.lmModel, ...input.preferred] : input.preferred;
  const healthy = input.nodes().filter((n) => n.healthy);
  if (healthy.length === 0) {
    throw new GatewayError('no_eligible_node', 'no healthy node serves any model right now', { param: 'model' });
  }
  const withRoom = new Set(allModels(healthy.filter((n) => n.eligible)));
  const everything = allModels(healthy);
  // "A model every healthy node serves" is judged over all healthy nodes, full or not.
  const common = input.requireAll || input.strategy === 'intersection_first' ? commonModels(healthy) : [];
  const pools = [common.filter((m) => withRoom.has(m)), everything.filter((m) => withRoom.has(m)), common, everything];
  for (const pool of pools) {
    const chosen = pickPreferred(pool, preferred) ?? pool[0];
    if (chosen !== undefined) return chosen;
  }
  throw new GatewayError('no_eligible_node', 'no healthy node serves any model right now', { param: 'model' });
}

function pickPreferred(available: readonly string[], preferred: readonly string[]): string | undefined {
  for (const want of preferred) {
    const lower = want.toLowerCase();
    const hit = available.find((m) => m === want) ?? available.find((m) => m.toLowerCase() === lower);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

/** Every model of these nodes, first-seen order (nodes come sorted by id). */
function allModels(nodes: readonly ModelNodeView[]): string[] {
  const seen = new Set<string>();
  for (const node of nodes) for (const model of node.models) seen.add(model);
  return [...seen];
}

/** Models every one of these nodes serves, in the first node's order. */
function commonModels(nodes: readonly ModelNodeView[]): string[] {
  const [first, ...rest] = nodes;
  const others = rest.map((n) => new Set(n.models));
  return first.models.filter((m) => others.every((set) => set.has(m)));
}

// ---- node order: the routing strategies -------------------------------------------------

/**
 * One node a request may go to, with what the fleet cache knows of it: ai-lb's in-flight
 * count, the engine's reading, whether it has the model loaded, NODE_PRIORITY
 * (EngineAwareCandidate), latency, failures, and the hints the store's least_loaded step
 * orders by on live counts.
 */
export interface RoutingCandidate extends EngineAwareCandidate {
  /** Observed upstream latency (EWMA), else the monitor's probe latency, else null. */
  latencyMs: number | null;
  /** Consecutive failures recorded in the node's circuit. */
  failures: number;
  /** SlotCandidate's extraLoad and slots, as of the last fleet refresh. */
  hints: { extraLoad: number; slots: number };
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
  /**
   * CACHE_AFFINITY: the request's affinity key (affinity-key.ts; null: none), the process's
   * rings, and the node this process last sent the key to (AffinityHomes), if any.
   */
  affinity?: { key: string | null; rings: HashRingCache; lastNode?: NodeId | null };
}

type Plan = (candidates: readonly RoutingCandidate[], ctx: PlanContext) => AcquirePlan;

const slots = (list: readonly RoutingCandidate[]): SlotCandidate[] => list.map(({ node, maxconn }) => ({ node, maxconn }));

/**
 * A cold node (its engine lists the model as not loaded) ranks after every warm or silent
 * one: above any NODE_PRIORITY (0..1000, unlisted 1001), so a request never triggers a
 * model load while a node with the model loaded has room.
 */
export const COLD_TIER = 2000;

/**
 * LEAST_LOADED, engine-aware: the store orders on live in-flight counts plus each node's
 * hints — not busy (live + outside load below its slots) first, then warm before cold and
 * NODE_PRIORITY (tier), then load over capacity; the given order breaks ties, so it is
 * shuffled (an idle fleet spreads instead of sending every lone request to one node) and
 * then sorted by KV-cache use (of two equal nodes, the one with room for a long prompt).
 * Ordering here on the cache's snapshot and handing the list over `in_order` would pile
 * simultaneous requests onto one node: they all see the same counts.
 */
function leastLoaded(candidates: readonly RoutingCandidate[], ctx: PlanContext): AcquirePlan {
  const ordered = shuffle(candidates, ctx.random).sort((a, b) => (a.engine?.kvCacheUsage ?? 0) - (b.engine?.kvCacheUsage ?? 0));
  return {
    candidates: ordered.map((c) => ({
      node: c.node,
      maxconn: c.maxconn,
      extraLoad: c.hints.extraLoad,
      slots: c.hints.slots,
      tier: c.priority + (c.warm === false ? COLD_TIER : 0),
    })),
    order: 'least_loaded',
  };
}

/** P2C's cost beyond load: a second of latency weighs as a full node, each recent failure too. */
export function p2cExtraCost(c: RoutingCandidate): number {
  return (c.latencyMs ?? 0) / LATENCY_SCALE_MS + c.failures * FAILURE_PENALTY;
}

/**
 * One plan per ROUTING_STRATEGY; each orders candidates for one attempt, with no I/O and no
 * side effects. The store applies `least_loaded` and `rotate` itself, on live counts, so the
 * order those two give is exact across replicas; the others hand it a finished order.
 * ROUND_ROBIN and RANDOM spread evenly by definition: NODE_PRIORITY and engine signals are
 * for the load-aware strategies.
 */
export const STRATEGY_PLANS: Record<RoutingStrategy, Plan> = {
  ROUND_ROBIN: (candidates, ctx) =>
    ctx.previousNode === null
      ? { candidates: slots(candidates), order: 'rotate', rotateKey: ctx.rotateKey }
      : // A retry continues the rotation after the failed node without consuming a turn.
        { candidates: slots(rotateAfter(candidates, ctx.previousNode)), order: 'in_order' },
  RANDOM: (candidates, ctx) => ({ candidates: slots(shuffle(candidates, ctx.random)), order: 'in_order' }),
  LEAST_LOADED: leastLoaded,
  // Two random candidates of the best tier (not full, warm, NODE_PRIORITY), the cheaper
  // first, then the rest ranked (engine-load-ranking.ts): random picks do not herd.
  P2C: (candidates, ctx) => ({ candidates: slots(powerOfTwoByEngineLoad(candidates, ctx.random, p2cExtraCost)), order: 'in_order' }),
  // Bounded-load consistent hashing on the request's key (cache-affinity.ts); a request
  // without one routes as LEAST_LOADED. The order is per key, so simultaneous requests of
  // different conversations do not pile up, and one key's home changes only with the bound.
  CACHE_AFFINITY: (candidates, ctx) => {
    const key = ctx.affinity?.key ?? null;
    if (key === null || ctx.affinity === undefined) return leastLoaded(candidates, ctx);
    const ring = ctx.affinity.rings.ringFor(candidates.map((c) => c.node));
    return { candidates: slots(orderByCacheAffinity(candidates, key, ring, { lastNode: ctx.affinity.lastNode })), order: 'in_order' };
  },
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

/** How much a second of latency weighs against one unit of load (a full node = 1). */
const LATENCY_SCALE_MS = 1000;
/** Each recent failure weighs as much as a completely full node. */
const FAILURE_PENALTY = 1;
