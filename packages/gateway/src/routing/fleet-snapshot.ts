/**
 * One fleet as the gateway's cache holds it between refreshes: the node records with their
 * freshness, and the indexes routing reads per request (healthy nodes per model, known
 * names, MODEL_ALIASES resolved per node, the /v1/models body). Built at refresh time,
 * never per request.
 */
import { surfacesOf, type ApiSurface, type FleetNode, type NodeId, type NodeState } from '@ai-lb/shared';
import { modelForNode, type ModelAliases } from './model-aliases.ts';

/** A node record as the cache keeps it. */
export interface FleetRecord extends FleetNode {
  /**
   * Listed before, missing from the store's latest listing while no scan has completed
   * since (Redis restarted empty, say): kept, stale, until its keep time.
   */
  retained: boolean;
}

export interface Snapshot {
  /** Every usable node record (fresh, stale, retained), sorted by id. */
  nodes: NodeState[];
  records: Map<NodeId, FleetRecord>;
  /** The indexes below, rebuilt only when this changes (what routing reads of each node). */
  signature: string;
  /** Healthy nodes per model id and per served alias, sorted by id (the order strategies and resolution rely on). */
  healthyByModel: Map<string, NodeState[]>;
  /** Every model any node record lists, healthy or not, and every alias one of them serves. */
  knownModels: Set<string>;
  /** Lowercased model id -> the first id (in node order) that lowercases to it; aliases after every id. */
  byLowerName: Map<string, string>;
  /** Alias -> node -> the id that node is sent (nodes that list the alias name itself are not in it). */
  aliasIds: Map<string, Map<NodeId, string>>;
  /** GET /v1/models, serialised once per snapshot. */
  modelsJson: string | null;
  /** The API surfaces each node serves natively (surfacesOf, once per record). */
  surfacesById: Map<NodeId, ReadonlySet<ApiSurface>>;
}

/**
 * Every snapshot is made here, by one object literal, so all of them share one hidden class.
 * The per-request reads of `snapshot.<index>` are optimised for the class they have seen: a
 * snapshot of another class (a `{ ...previous }` copy makes a new one) de-optimised every
 * function on the request's path that reads the fleet, at each refresh.
 */
function snapshotOf(
  nodes: NodeState[],
  records: Map<NodeId, FleetRecord>,
  surfacesById: Map<NodeId, ReadonlySet<ApiSurface>>,
  index: Pick<Snapshot, 'signature' | 'healthyByModel' | 'knownModels' | 'byLowerName' | 'aliasIds' | 'modelsJson'>,
): Snapshot {
  return {
    nodes,
    records,
    signature: index.signature,
    healthyByModel: index.healthyByModel,
    knownModels: index.knownModels,
    byLowerName: index.byLowerName,
    aliasIds: index.aliasIds,
    modelsJson: index.modelsJson,
    surfacesById,
  };
}

export const EMPTY_SNAPSHOT: Snapshot = snapshotOf([], new Map(), new Map(), {
  signature: '',
  healthyByModel: new Map(),
  knownModels: new Set(),
  byLowerName: new Map(),
  aliasIds: new Map(),
  modelsJson: null,
});

/**
 * The indexes of a fleet. Rebuilt only when what routing reads of the nodes changed: a scan
 * rewrites every record (times, latency) every few seconds, but models, health and caps
 * rarely change, and a fleet of many nodes × many models is worth not re-indexing per refresh.
 * `records` come sorted by node id.
 */
export function buildSnapshot(records: readonly FleetRecord[], previous: Snapshot, aliases: ModelAliases): Snapshot {
  const nodes = records.map((r) => r.state);
  const byId = new Map(records.map((r) => [r.state.node, r]));
  const surfacesById = new Map<NodeId, ReadonlySet<ApiSurface>>(nodes.map((n) => [n.node, new Set(surfacesOf(n))]));
  const signature = nodes
    .map((n) => `${n.node}\u0001${n.healthy}\u0001${n.maxconn}\u0001${n.kind}\u0001${n.models.join('\u0000')}`)
    .join('\u0002');
  if (signature === previous.signature) return snapshotOf(nodes, byId, surfacesById, previous);
  const healthyByModel = new Map<string, NodeState[]>();
  const knownModels = new Set<string>();
  const byLowerName = new Map<string, string>();
  for (const node of nodes) {
    for (const model of node.models) {
      knownModels.add(model);
      const lower = model.toLowerCase();
      if (!byLowerName.has(lower)) byLowerName.set(lower, model);
    }
    if (!node.healthy) continue;
    for (const model of new Set(node.models)) {
      const list = healthyByModel.get(model);
      if (list) list.push(node);
      else healthyByModel.set(model, [node]);
    }
  }
  const aliasIds = indexAliases(nodes, aliases, { healthyByModel, knownModels, byLowerName });
  return snapshotOf(nodes, byId, surfacesById, { signature, healthyByModel, knownModels, byLowerName, aliasIds, modelsJson: null });
}

/**
 * MODEL_ALIASES over the fleet: an alias is known when some node lists one of its ids (or
 * its name), and routes to the healthy nodes that do, each sent the id it lists.
 */
function indexAliases(
  nodes: readonly NodeState[],
  aliases: ModelAliases,
  index: Pick<Snapshot, 'healthyByModel' | 'knownModels' | 'byLowerName'>,
): Map<string, Map<NodeId, string>> {
  const aliasIds = new Map<string, Map<NodeId, string>>();
  for (const alias of aliases.keys()) {
    const perNode = new Map<NodeId, string>();
    const healthy: NodeState[] = [];
    for (const node of nodes) {
      const id = modelForNode(aliases, alias, node.models);
      if (id === null) continue;
      if (id !== alias) perNode.set(node.node, id);
      if (node.healthy) healthy.push(node);
    }
    if (perNode.size === 0 && !index.knownModels.has(alias)) continue;
    aliasIds.set(alias, perNode);
    index.knownModels.add(alias);
    if (healthy.length > 0) index.healthyByModel.set(alias, healthy);
    const lower = alias.toLowerCase();
    if (!index.byLowerName.has(lower)) index.byLowerName.set(lower, alias);
  }
  return aliasIds;
}

export interface ModelEntry {
  id: string;
  object: 'model';
  /** When this process first saw a node list the model (epoch seconds): stable across refreshes. */
  created: number;
  owned_by: string;
}

/**
 * The union of models over healthy nodes, de-duplicated by id, in node-id order; then the
 * aliases some healthy node serves (owned by "ai-lb": the name is the gateway's).
 */
export function listModels(snapshot: Snapshot, firstSeen: Map<string, number>): ModelEntry[] {
  const seen = new Map<string, ModelEntry>();
  const now = Math.floor(Date.now() / 1000);
  const add = (id: string, ownedBy: string) => {
    if (seen.has(id)) return;
    let created = firstSeen.get(id);
    if (created === undefined) {
      created = now;
      firstSeen.set(id, created);
    }
    seen.set(id, { id, object: 'model', created, owned_by: ownedBy });
  };
  for (const node of snapshot.nodes) {
    if (!node.healthy) continue;
    for (const id of node.models) add(id, node.kind);
  }
  for (const alias of snapshot.aliasIds.keys()) if (snapshot.healthyByModel.has(alias)) add(alias, 'ai-lb');
  return [...seen.values()];
}
