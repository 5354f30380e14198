/**
 * Which model ids an upstream may put into the fleet. A model id travels into HTTP headers
 * (x-selected-model), metric label values, Redis keys (rr:{model}, queue:{model}) and
 * logs, and it comes from a server nobody vetted. So an id is refused when it:
 *  - is longer than MODEL_ID_MAX_LENGTH (a 1 MB id became 1 MB label values and keys);
 *  - holds a control character: C0 (CR and LF among them: header injection), DEL or C1;
 *  - holds a lone surrogate: it has no UTF-8 form, so it cannot be encoded into a header.
 * Any other character is kept ("uni-模型"): real servers list such names, and the gateway
 * encodes non-ASCII ids where they go into headers.
 *
 * A node lists at most MAX_MODELS_PER_NODE ids (the first ones, in the server's order):
 * a listing of 100,000 ids made every lookup and every /v1/models answer slow.
 */

/** Characters (UTF-16 code units) an id may have; real ids (HF repo names, Ollama tags) stay under ~120. */
export const MODEL_ID_MAX_LENGTH = 256;

/** Ids kept per node; a big LM Studio or Ollama box lists a few hundred. */
export const MAX_MODELS_PER_NODE = 1000;

/** Why an id was left out: the `reason` label of ai_lb_monitor_model_ids_dropped_total. */
export const MODEL_ID_DROP_REASONS = ['too_long', 'control_character', 'malformed_unicode', 'over_cap'] as const;
export type ModelIdDropReason = (typeof MODEL_ID_DROP_REASONS)[number];

// C0 (U+0000–U+001F), DEL (U+007F), C1 (U+0080–U+009F).
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;
// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why `id` may not enter the fleet, or null when it may. */
export function modelIdProblem(id: string): Exclude<ModelIdDropReason, 'over_cap'> | null {
  if (id.length > MODEL_ID_MAX_LENGTH) return 'too_long';
  if (CONTROL_CHARACTER.test(id)) return 'control_character';
  if (LONE_SURROGATE.test(id)) return 'malformed_unicode';
  return null;
}

export interface CleanModelIds {
  /** Valid ids in the server's order, duplicates removed, at most `cap`. */
  ids: string[];
  /** How many ids were left out, per reason (only reasons that occurred). */
  dropped: Partial<Record<ModelIdDropReason, number>>;
}

/** Keeps the valid ids of a listing, in order, up to `cap`; counts what it left out. */
export function cleanModelIds(ids: Iterable<string>, cap = MAX_MODELS_PER_NODE): CleanModelIds {
  const kept = new Set<string>();
  const dropped: Partial<Record<ModelIdDropReason, number>> = {};
  for (const id of ids) {
    if (kept.has(id)) continue;
    const reason = modelIdProblem(id) ?? (kept.size >= cap ? 'over_cap' : null);
    if (reason === null) kept.add(id);
    else dropped[reason] = (dropped[reason] ?? 0) + 1;
  }
  return { ids: [...kept], dropped };
}
