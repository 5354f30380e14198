/**
 * Non-stream chat answers as real engines shape them, for a fake server configured with
 * `{"answerShape":"engine"}` (the bench's `--payload engine`): the default answer is flat
 * and 200 bytes; these carry what vLLM, llama.cpp and OpenAI-compatible servers add —
 * nested usage details, llama.cpp's `timings`, null fields — and a coding answer's text
 * (quotes, newlines, `<>&`), so what a gateway does with an answer is measured at its real size.
 */

const TEXT = Array.from(
  { length: 12 },
  (_, i) => `Line ${i}: \`step${i}(input)\` returns "<${i}> & done" after replacing /\\s+/g with a space.\n`,
).join('');

type Shape = (id: string, model: string) => object;

const SHAPES: Shape[] = [
  // vLLM
  (id, model) => ({
    id,
    object: 'chat.completion',
    created: 1764590000,
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', reasoning_content: null, content: TEXT, tool_calls: [] },
        logprobs: null,
        finish_reason: 'stop',
        stop_reason: null,
      },
    ],
    usage: { prompt_tokens: 9810, total_tokens: 10222, completion_tokens: 412, prompt_tokens_details: null },
    prompt_logprobs: null,
    kv_transfer_params: null,
  }),
  // llama.cpp server
  (id, model) => ({
    choices: [{ finish_reason: 'stop', index: 0, message: { role: 'assistant', content: TEXT } }],
    created: 1764590000,
    model,
    system_fingerprint: 'b6549-2e3f1a0c',
    object: 'chat.completion',
    usage: { completion_tokens: 412, prompt_tokens: 9810, total_tokens: 10222, prompt_tokens_details: { cached_tokens: 9728 } },
    id,
    timings: {
      cache_n: 9728,
      prompt_n: 82,
      prompt_ms: 61.2,
      prompt_per_token_ms: 0.75,
      prompt_per_second: 1339.9,
      predicted_n: 412,
      predicted_ms: 8810.4,
      predicted_per_token_ms: 21.4,
      predicted_per_second: 46.8,
    },
  }),
  // OpenAI's shape, as SGLang and hosted OpenAI-compatible servers answer
  (id, model) => ({
    id,
    object: 'chat.completion',
    created: 1764590000,
    model,
    choices: [
      { index: 0, message: { role: 'assistant', content: TEXT, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' },
    ],
    usage: {
      prompt_tokens: 9810,
      completion_tokens: 412,
      total_tokens: 10222,
      prompt_tokens_details: { cached_tokens: 9728, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    service_tier: 'default',
    system_fingerprint: null,
  }),
];

/** The n-th engine-shaped answer (the shapes take turns). */
export function engineShapedAnswer(n: number, id: string, model: string): object {
  return SHAPES[n % SHAPES.length](id, model);
}
