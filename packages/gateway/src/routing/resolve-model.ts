import { GatewayError, type AutoModelStrategy } from '@ai-lb/shared';

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
  /** Exact-id lookup over every known node's models: the hot path's answer without a scan. */
  isKnownModel: (id: string) => boolean;
  /**
   * Nodes in a stable order (by node id), so "first available" means the same on every
   * replica. A function: only sentinels and near-misses need the whole fleet.
   */
  nodes: () => readonly ModelNodeView[];
}

export interface ResolvedModel {
  model: string;
  /** The request named a sentinel (or LM_MODEL) rather than a concrete id. */
  viaSentinel: boolean;
}

/**
 * SPEC "Model resolution", pure. A sentinel resolves to a model with an eligible node
 * (falling back to one with merely a healthy node, so a full fleet yields 429 rather than
 * 404); a concrete id must be served by some known node, else 404 at once.
 */
export function resolveModel(input: ResolveModelInput): ResolvedModel {
  const requested = input.requested ?? (input.fallbackToLmModel ? input.lmModel : undefined);
  if (requested === undefined || requested.trim() === '') {
    throw new GatewayError('invalid_request', 'you must provide a model parameter', { param: 'model' });
  }
  const lower = requested.toLowerCase();
  const isLmModel = input.lmModel !== undefined && input.lmModel.toLowerCase() === lower;
  if (input.sentinels.some((s) => s.toLowerCase() === lower) || isLmModel) {
    return { model: resolveSentinel(input), viaSentinel: true };
  }
  if (input.isKnownModel(requested)) return { model: requested, viaSentinel: false };
  return { model: resolveConcrete(requested, input.nodes()), viaSentinel: false };
}

function resolveConcrete(requested: string, nodes: readonly ModelNodeView[]): string {
  let caseInsensitive: string | undefined;
  const lower = requested.toLowerCase();
  for (const node of nodes) {
    for (const model of node.models) {
      if (model === requested) return model;
      if (caseInsensitive === undefined && model.toLowerCase() === lower) caseInsensitive = model;
    }
  }
  // Model ids are case-sensitive upstream, but "Llama3" for "llama3" is an obvious intent.
  if (caseInsensitive !== undefined) return caseInsensitive;
  const shown = requested.length > 200 ? `${requested.slice(0, 200)}…` : requested;
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
