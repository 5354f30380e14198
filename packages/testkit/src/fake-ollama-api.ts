/**
 * Ollama's own API on the fake ollama kind (ollama/ollama docs/api.md): POST /api/chat and
 * /api/generate stream NDJSON by default (`stream` absent means true) and end with a done
 * line carrying done_reason and the counts and durations (nanoseconds); /api/embed,
 * the legacy /api/embeddings, and /api/show. Tool calls arrive whole, with arguments as an
 * object, as Ollama sends them. Errors are {"error":"…"}.
 */
import { FAKE_PIECES, FAKE_TEXT, json, type FakeAnswer } from './fake-http.ts';
import { chatToolCall } from './fake-tool-call.ts';
import type { FakeEndpoint } from './fake-surfaces.ts';

type Json = Record<string, unknown>;

let counter = 0;

const METRICS = {
  total_duration: 250_000_000,
  load_duration: 10_000_000,
  prompt_eval_count: 5,
  prompt_eval_duration: 40_000_000,
  eval_count: 3,
  eval_duration: 200_000_000,
};

export function answerOllama(endpoint: FakeEndpoint, body: Json, model: string, models: readonly string[]): FakeAnswer {
  const createdAt = new Date().toISOString();
  const stream = body.stream !== false;
  switch (endpoint.key) {
    case 'POST /api/chat': {
      const call = chatToolCall(body, `call_${process.pid}_${++counter}`);
      if (call) {
        const message = {
          role: 'assistant',
          content: '',
          tool_calls: [{ id: call.id, function: { index: 0, name: call.name, arguments: call.arguments } }],
        };
        const done = {
          model,
          created_at: createdAt,
          message: { role: 'assistant', content: '' },
          done: true,
          done_reason: 'stop',
          ...METRICS,
        };
        return stream ? ndjson([{ model, created_at: createdAt, message, done: false }, done]) : json({ ...done, message });
      }
      const line = (content: string) => ({ model, created_at: createdAt, message: { role: 'assistant', content }, done: false });
      const done = { ...line(''), done: true, done_reason: 'stop', ...METRICS };
      return stream ? ndjson([...FAKE_PIECES.map(line), done]) : json({ ...done, message: { role: 'assistant', content: FAKE_TEXT } });
    }
    case 'POST /api/generate': {
      const line = (response: string) => ({ model, created_at: createdAt, response, done: false });
      const done = { ...line(''), done: true, done_reason: 'stop', context: [1, 2, 3], ...METRICS };
      return stream ? ndjson([...FAKE_PIECES.map(line), done]) : json({ ...done, response: FAKE_TEXT });
    }
    case 'POST /api/embed': {
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      const { total_duration, load_duration, prompt_eval_count } = METRICS;
      return json({ model, embeddings: inputs.map(() => [0.1, 0.2, 0.3]), total_duration, load_duration, prompt_eval_count });
    }
    case 'POST /api/embeddings':
      return json({ embedding: [0.1, 0.2, 0.3] });
    default:
      return show(model, models);
  }
}

function show(model: string, models: readonly string[]): FakeAnswer {
  if (!models.includes(model)) return json({ error: `model '${model}' not found` }, 404);
  return json({
    modelfile: `FROM ${model}\n`,
    parameters: 'stop "<|eot_id|>"',
    template: '{{ .Prompt }}',
    details: {
      parent_model: '',
      format: 'gguf',
      family: 'llama',
      families: ['llama'],
      parameter_size: '8.0B',
      quantization_level: 'Q4_K_M',
    },
    model_info: { 'general.architecture': 'llama', 'llama.context_length': 8192 },
    capabilities: ['completion', 'tools'],
    modified_at: '2024-06-01T12:00:00.000000000Z',
  });
}

function ndjson(lines: unknown[]): FakeAnswer {
  return { kind: 'stream', contentType: 'application/x-ndjson', events: lines.map((line) => `${JSON.stringify(line)}\n`) };
}
