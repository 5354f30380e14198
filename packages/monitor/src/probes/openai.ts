/**
 * OpenAI-compatible `GET /v1/models`: {"object":"list","data":[{"id","owned_by",…}]}.
 * Every kind of server ai-lb fronts answers it; `owned_by` hints at which kind it is
 * ("llamacpp", "vllm", "sglang", "library" for Ollama, "organization_owner" for LM Studio).
 */
import { badShape, isRecord, jsonBody } from './probe-context.ts';
import type { ProbeResponse } from './probe-client.ts';

export const OPENAI_MODELS_PATH = '/v1/models';

export interface OpenAiModelList {
  models: string[];
  ownedBy: string[];
}

export function parseOpenAiModels(doc: unknown): OpenAiModelList {
  if (!isRecord(doc) || !Array.isArray(doc.data)) throw badShape(OPENAI_MODELS_PATH, '{"data":[…]}');
  const models = new Set<string>();
  const ownedBy = new Set<string>();
  for (const entry of doc.data) {
    if (!isRecord(entry) || typeof entry.id !== 'string' || entry.id === '') {
      throw badShape(OPENAI_MODELS_PATH, 'every data entry to have a string "id"');
    }
    models.add(entry.id);
    if (typeof entry.owned_by === 'string') ownedBy.add(entry.owned_by);
  }
  return { models: [...models], ownedBy: [...ownedBy] };
}

export function readOpenAiModels(response: ProbeResponse): OpenAiModelList {
  return parseOpenAiModels(jsonBody(response, OPENAI_MODELS_PATH));
}
