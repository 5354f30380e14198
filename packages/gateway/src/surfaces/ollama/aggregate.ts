/**
 * The fleet-wide answers of Ollama's listing endpoints, built from many nodes:
 *
 *   GET /api/tags    every model of the fleet: Ollama nodes' own entries (as their /api/tags
 *                    gave them), and, for models served only by translation, an entry made
 *                    from the model id; de-duplicated by name, a node's own entry first
 *   GET /api/ps      the models loaded in memory, de-duplicated by name
 *   GET /api/version the lowest version among the Ollama nodes: clients gate features on it,
 *                    and only the lowest is true of every node a request may reach
 *   POST /api/show   for a model no Ollama node has, a minimal answer made from its id
 *
 * Pure: the caller reads the nodes (their /api/tags, /api/ps, /api/version answers or the
 * monitor's records) and passes them in.
 */
import { createHash } from 'node:crypto';
import type { OllamaModelDetails, OllamaModelEntry } from './ollama-types.ts';

const NO_DETAILS: OllamaModelDetails = {
  parent_model: '',
  format: '',
  family: '',
  families: null,
  parameter_size: '',
  quantization_level: '',
};

export type TagSource =
  /** An Ollama node's own /api/tags entries. */
  | { entries: readonly unknown[] }
  /** A node serving the models by translation: only ids are known. */
  | { modelIds: readonly string[]; seenAtMs: number };

export function aggregateTags(sources: readonly TagSource[]): { models: OllamaModelEntry[] } {
  const byName = new Map<string, OllamaModelEntry>();
  for (const source of sources) if ('entries' in source) addEntries(byName, source.entries);
  for (const source of sources) {
    if ('modelIds' in source) for (const id of source.modelIds) if (!byName.has(id)) byName.set(id, syntheticEntry(id, source.seenAtMs));
  }
  return { models: sortByModified([...byName.values()]) };
}

export function aggregatePs(lists: readonly (readonly unknown[])[]): { models: OllamaModelEntry[] } {
  const byName = new Map<string, OllamaModelEntry>();
  for (const entries of lists) addEntries(byName, entries);
  return { models: [...byName.values()] };
}

/** A model entry as Ollama lists it, for a model known only by id. */
export function syntheticEntry(id: string, seenAtMs: number): OllamaModelEntry {
  return {
    name: id,
    model: id,
    modified_at: new Date(seenAtMs).toISOString(),
    size: 0,
    // Clients show and compare digests (Open WebUI keys models by them): stable per id.
    digest: createHash('sha256').update(id).digest('hex'),
    details: { ...NO_DETAILS },
  };
}

/** /api/show for a model served only by translation. */
export function syntheticShow(id: string, seenAtMs: number) {
  return {
    modelfile: '',
    parameters: '',
    template: '',
    details: { ...NO_DETAILS },
    model_info: {},
    capabilities: ['completion'],
    modified_at: new Date(seenAtMs).toISOString(),
    model: id,
  };
}

/** The lowest of the nodes' versions ("0.6.8", "0.12.3-rc1"), or null when none parses. */
export function lowestVersion(versions: readonly string[]): string | null {
  let lowest: { text: string; parts: number[] } | null = null;
  for (const text of versions) {
    const match = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
    if (!match) continue;
    const parts = [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
    if (lowest === null || compare(parts, lowest.parts) < 0) lowest = { text, parts };
  }
  return lowest?.text ?? null;
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function addEntries(byName: Map<string, OllamaModelEntry>, entries: readonly unknown[]) {
  for (const entry of entries) {
    const record = entry as Partial<OllamaModelEntry> | null;
    const name = typeof record?.name === 'string' ? record.name : typeof record?.model === 'string' ? record.model : undefined;
    if (name === undefined || name === '' || byName.has(name)) continue;
    byName.set(name, {
      size: 0,
      digest: '',
      details: { ...NO_DETAILS },
      ...record,
      name,
      model: typeof record?.model === 'string' ? record.model : name,
    });
  }
}

/** Ollama lists the most recently modified first. */
function sortByModified(entries: OllamaModelEntry[]): OllamaModelEntry[] {
  const time = (entry: OllamaModelEntry) => Date.parse(entry.modified_at ?? '') || 0;
  return entries.sort((a, b) => time(b) - time(a));
}
