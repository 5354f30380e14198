/**
 * What real clients send and real engines answer, for `pnpm bench --payload engine`. The
 * default payload ("Say hello." in, three flat chunks out) is what every earlier row was
 * measured with; costs that grow with a body's size, an answer's nesting or a chunk's extra
 * fields never show in it. This one is a coding agent's turn (system prompt, tool
 * definitions, a history with tool calls and results, code full of quotes, newlines and
 * `<>&`) and the chunk shapes of four engines, taken from their recorded streams.
 */

const INSTRUCTION =
  'You are a coding agent working in the user\'s repository. Read the files you need before you change them; keep "diffs" small; run the tests with `pnpm test` and report <failures> & warnings verbatim.\n';

function functionTool(name: string, description: string, properties: Record<string, unknown>) {
  return {
    type: 'function',
    function: {
      name,
      description,
      parameters: { type: 'object', properties, required: Object.keys(properties), additionalProperties: false },
    },
  };
}

const TOOLS = Array.from({ length: 12 }, (_, i) =>
  functionTool(`tool_${i}`, `${INSTRUCTION.repeat(2)}Use tool_${i} when the task needs it.`, {
    path: { type: 'string', description: 'A path relative to the repository root, e.g. "src/index.ts".' },
    pattern: { type: 'string', description: 'A regular expression, e.g. "^export (async )?function".' },
    limit: { type: 'integer', minimum: 1, maximum: 2000, description: 'Lines to read at most.' },
  }),
);

/** A file's text as a tool result carries it: code with quotes, backslashes, `<>&` and newlines. */
const CODE = Array.from(
  { length: 60 },
  (_, i) => `export function step${i}(input: string): string {\n\treturn input.replace(/\\s+/g, " ") + '<${i}> & "done"';\n}\n`,
).join('');

function toolTurn(i: number) {
  const id = `call_${String(i).padStart(24, '0')}`;
  return [
    {
      role: 'assistant',
      content: null,
      tool_calls: [
        { id, type: 'function', function: { name: `tool_${i}`, arguments: JSON.stringify({ path: `src/step${i}.ts`, limit: 200 }) } },
      ],
    },
    { role: 'tool', tool_call_id: id, content: CODE.slice(0, 2_500 + i * 300) },
  ];
}

/** A coding agent's chat request of about 30 KB (the model and `stream` as asked). */
export function agentChatBody(model: string, stream: boolean): string {
  return JSON.stringify({
    model,
    messages: [
      { role: 'system', content: INSTRUCTION.repeat(30) },
      { role: 'user', content: 'The tests fail after the last change to src/step3.ts; find out why and fix it.' },
      // An agent's turn ends with a tool's result (so the fake upstream answers with text).
      ...[0, 1, 2, 3].flatMap(toolTurn),
    ],
    tools: TOOLS,
    tool_choice: 'auto',
    temperature: 0.2,
    max_tokens: 1024,
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
  });
}

/**
 * One content chunk of each engine, split where the stream upstream writes its timestamp
 * (the content's last characters, after `@`): [before, after]. No `@` elsewhere, so the
 * client finds the stamp. With `include_usage` asked (as the agent body does):
 * - vLLM: `logprobs` and `finish_reason` null in the choice; text in any script;
 * - OpenAI and SGLang: `"usage":null` and a null `system_fingerprint` in every chunk;
 * - Ollama: Go's encoder writes `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026`;
 * - llama.cpp: keys in its own order, a build fingerprint.
 */
export function engineChunkParts(model: string): Array<[string, string]> {
  const tail = (fields: string) => `"${fields}\n\n`;
  return [
    [
      `data: {"id":"chatcmpl-a0e8d16d47a64de58a0a3083e18d432a","object":"chat.completion.chunk","created":1764590000,"model":"${model}","choices":[{"index":0,"delta":{"content":" 요청@`,
      tail('},"logprobs":null,"finish_reason":null}]}'),
    ],
    [
      `data: {"id":"chatcmpl-Cc3VIT5vNr0xS3kd7qXeY","object":"chat.completion.chunk","created":1764590000,"model":"${model}","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":" the@`,
      tail('},"logprobs":null,"finish_reason":null}],"usage":null}'),
    ],
    [
      `data: {"id":"chatcmpl-417","object":"chat.completion.chunk","created":1764590000,"model":"${model}","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"\\u003cdiv\\u003e@`,
      tail('},"finish_reason":null}]}'),
    ],
    [
      `data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":" return@`,
      tail(
        `}}],"created":1764590000,"id":"chatcmpl-9c2JdPzJZ0hX1b7vYV2sYx3r","model":"${model}","system_fingerprint":"b6549-2e3f1a0c","object":"chat.completion.chunk"}`,
      ),
    ],
  ];
}

/** Each engine's last events: its finish chunk and its usage (nested details, llama.cpp's timings). */
export function engineStreamEnds(model: string): string[] {
  const usage =
    '"usage":{"prompt_tokens":9810,"completion_tokens":412,"total_tokens":10222,"prompt_tokens_details":{"cached_tokens":9728}}';
  return [
    `data: {"id":"chatcmpl-a0e8d16d47a64de58a0a3083e18d432a","object":"chat.completion.chunk","created":1764590000,"model":"${model}","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop","stop_reason":null}]}\n\ndata: {"id":"chatcmpl-a0e8d16d47a64de58a0a3083e18d432a","object":"chat.completion.chunk","created":1764590000,"model":"${model}","choices":[],${usage}}\n\ndata: [DONE]\n\n`,
    `data: {"id":"chatcmpl-Cc3VIT5vNr0xS3kd7qXeY","object":"chat.completion.chunk","created":1764590000,"model":"${model}","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\ndata: {"id":"chatcmpl-Cc3VIT5vNr0xS3kd7qXeY","object":"chat.completion.chunk","created":1764590000,"model":"${model}","service_tier":"default","system_fingerprint":null,"choices":[],"usage":{"prompt_tokens":9810,"completion_tokens":412,"total_tokens":10222,"prompt_tokens_details":{"cached_tokens":9728,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}\n\ndata: [DONE]\n\n`,
    `data: {"id":"chatcmpl-417","object":"chat.completion.chunk","created":1764590000,"model":"${model}","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}\n\ndata: {"id":"chatcmpl-417","object":"chat.completion.chunk","created":1764590000,"model":"${model}","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":9810,"completion_tokens":412,"total_tokens":10222}}\n\ndata: [DONE]\n\n`,
    `data: {"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1764590000,"id":"chatcmpl-9c2JdPzJZ0hX1b7vYV2sYx3r","model":"${model}","system_fingerprint":"b6549-2e3f1a0c","object":"chat.completion.chunk","usage":{"completion_tokens":412,"prompt_tokens":9810,"total_tokens":10222,"prompt_tokens_details":{"cached_tokens":9728}},"timings":{"cache_n":9728,"prompt_n":82,"prompt_ms":61.2,"prompt_per_token_ms":0.75,"prompt_per_second":1339.9,"predicted_n":412,"predicted_ms":8810.4,"predicted_per_token_ms":21.4,"predicted_per_second":46.8}}\n\ndata: [DONE]\n\n`,
  ];
}
