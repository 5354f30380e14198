/**
 * MODEL_ALIASES: one public model name for nodes that call the same model differently
 * (`llama3.1-8b=llama3.1:8b|meta-llama/Llama-3.1-8B-Instruct|…`). Pure helpers for the
 * three places an alias shows: which nodes may serve a request for it, which id each node
 * gets in `model` (the body is rewritten per node), and what /v1/models and /v1/nodes list.
 */
export type ModelAliases = ReadonlyMap<string, readonly string[]>;

/**
 * The id a node serves a request for `requested` with: the requested id itself when the
 * node lists it (an explicit concrete id always wins), else the first of the alias's ids
 * the node lists, else null (the node cannot serve it).
 */
export function modelForNode(aliases: ModelAliases, requested: string, nodeModels: readonly string[]): string | null {
  if (nodeModels.includes(requested)) return requested;
  for (const id of aliases.get(requested) ?? []) if (nodeModels.includes(id)) return id;
  return null;
}

/** Whether any id of the alias (or the name itself) is served by some node. */
export function isAliasServed(aliases: ModelAliases, alias: string, servedModels: ReadonlySet<string>): boolean {
  if (servedModels.has(alias)) return true;
  return (aliases.get(alias) ?? []).some((id) => servedModels.has(id));
}

/** The alias names with at least one serving node, in MODEL_ALIASES order: the extra /v1/models entries. */
export function servedAliases(aliases: ModelAliases, servedModels: ReadonlySet<string>): string[] {
  return [...aliases.keys()].filter((alias) => isAliasServed(aliases, alias, servedModels));
}

/** The aliases a node answers to (for /v1/nodes): those with an id in the node's model list. */
export function aliasesOfNode(aliases: ModelAliases, nodeModels: readonly string[]): string[] {
  return [...aliases.entries()].filter(([, ids]) => ids.some((id) => nodeModels.includes(id))).map(([alias]) => alias);
}
