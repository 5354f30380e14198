/**
 * Ollama `GET /api/ps`: the models loaded in memory (on GPU or CPU alike: both answer
 * without a load). Ollama does not expose its queue. `expires_at` is not used to drop a
 * model early: it is the server's clock, and a model about to expire is still warm now.
 */
import { jsonBody } from '../probes/probe-context.ts';
import { OLLAMA_PS_PATH, parseOllamaModels } from '../probes/ollama.ts';
import { NO_QUEUE, type LoadPoller } from './load-poller.ts';

export const pollOllamaLoad: LoadPoller = async (get) => ({
  ...NO_QUEUE,
  loadedModels: parseOllamaModels(jsonBody(await get(OLLAMA_PS_PATH), OLLAMA_PS_PATH), OLLAMA_PS_PATH),
});
