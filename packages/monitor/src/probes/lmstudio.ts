/**
 * LM Studio REST API v0: `GET /api/v0/models` lists every downloaded model with
 * `type` (llm | vlm | embeddings) and `state` (loaded | not-loaded). It does not expose
 * how many requests a loaded model takes at once, so capacity is never detected.
 */
import { badShape, isRecord, jsonBody, tryGet, type KindProbe } from './probe-context.ts';

export const LMSTUDIO_MODELS_PATH = '/api/v0/models';

export interface LmStudioModel {
  id: string;
  type: string;
  state: 'loaded' | 'not-loaded';
}

export function parseLmStudioModels(doc: unknown): LmStudioModel[] {
  if (!isRecord(doc) || !Array.isArray(doc.data)) throw badShape(LMSTUDIO_MODELS_PATH, '{"data":[…]}');
  return doc.data.map((entry) => {
    if (!isRecord(entry) || typeof entry.id !== 'string' || (entry.state !== 'loaded' && entry.state !== 'not-loaded')) {
      throw badShape(LMSTUDIO_MODELS_PATH, 'entries with "id" and "state": "loaded" | "not-loaded"');
    }
    return { id: entry.id, type: typeof entry.type === 'string' ? entry.type : 'unknown', state: entry.state };
  });
}

export const probeLmStudio: KindProbe = async (context) => {
  const models = await tryGet(context, LMSTUDIO_MODELS_PATH, (r) => parseLmStudioModels(jsonBody(r, LMSTUDIO_MODELS_PATH)));
  if (models === null) return null;
  return {
    kind: 'lmstudio',
    loadedModels: models.filter((m) => m.state === 'loaded').map((m) => m.id),
    detectedMaxconn: null,
  };
};
