/**
 * Ollama: `GET /api/tags` lists the models on disk ({"models":[{"name","model",…}]}),
 * `GET /api/ps` the ones loaded in memory. Ollama does not expose its concurrency
 * (OLLAMA_NUM_PARALLEL is a server env var with no API), so capacity is never detected.
 */
import { badShape, isRecord, jsonBody, tryGet, type KindProbe } from './probe-context.ts';

export const OLLAMA_TAGS_PATH = '/api/tags';
export const OLLAMA_PS_PATH = '/api/ps';

/** Model names from an /api/tags or /api/ps document. */
export function parseOllamaModels(doc: unknown, path = OLLAMA_TAGS_PATH): string[] {
  if (!isRecord(doc) || !Array.isArray(doc.models)) throw badShape(path, '{"models":[…]}');
  const names = new Set<string>();
  for (const entry of doc.models) {
    const name = isRecord(entry) ? (entry.name ?? entry.model) : undefined;
    if (typeof name !== 'string' || name === '') throw badShape(path, 'every model to have a string "name"');
    names.add(name);
  }
  return [...names];
}

export const probeOllama: KindProbe = async (context) => {
  const tags = await tryGet(context, OLLAMA_TAGS_PATH, (r) => ({
    models: parseOllamaModels(jsonBody(r, OLLAMA_TAGS_PATH)),
    latencyMs: r.latencyMs,
  }));
  if (tags === null) return null;
  const loaded = await tryGet(context, OLLAMA_PS_PATH, (r) => parseOllamaModels(jsonBody(r, OLLAMA_PS_PATH), OLLAMA_PS_PATH));
  return { kind: 'ollama', models: tags.models, latencyMs: tags.latencyMs, loadedModels: loaded ?? [], detectedMaxconn: null };
};
