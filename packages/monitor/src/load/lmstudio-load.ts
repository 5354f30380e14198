/**
 * LM Studio: the REST model list with each model's loaded state — `GET /api/v1/models`
 * (LM Studio ≥ 0.4: a model is loaded when it has `loaded_instances`), else the older
 * `GET /api/v0/models` (`state: "loaded"`). LM Studio does not expose its queue.
 */
import { ProbeError } from '../probes/probe-error.ts';
import { badShape, isRecord, jsonBody } from '../probes/probe-context.ts';
import { LMSTUDIO_MODELS_PATH, parseLmStudioModels } from '../probes/lmstudio.ts';
import { NO_QUEUE, type LoadPoller } from './load-poller.ts';

export const LMSTUDIO_V1_MODELS_PATH = '/api/v1/models';

/** Keys of the models with at least one loaded instance. */
export function parseLmStudioV1Loaded(doc: unknown): string[] {
  if (!isRecord(doc) || !Array.isArray(doc.models)) throw badShape(LMSTUDIO_V1_MODELS_PATH, '{"models":[…]}');
  return doc.models.flatMap((model) => {
    if (!isRecord(model) || typeof model.key !== 'string' || !Array.isArray(model.loaded_instances)) {
      throw badShape(LMSTUDIO_V1_MODELS_PATH, 'models with "key" and "loaded_instances"');
    }
    return model.loaded_instances.length > 0 ? [model.key] : [];
  });
}

export const pollLmStudioLoad: LoadPoller = async (get) => {
  try {
    return { ...NO_QUEUE, loadedModels: parseLmStudioV1Loaded(jsonBody(await get(LMSTUDIO_V1_MODELS_PATH), LMSTUDIO_V1_MODELS_PATH)) };
  } catch (error) {
    if (!(error instanceof ProbeError) || error.reason !== 'http_status') throw error;
  }
  const models = parseLmStudioModels(jsonBody(await get(LMSTUDIO_MODELS_PATH), LMSTUDIO_MODELS_PATH));
  return { ...NO_QUEUE, loadedModels: models.filter((m) => m.state === 'loaded').map((m) => m.id) };
};
