/**
 * Property tests of the Ollama API <-> OpenAI translation (fast-check):
 *  - an /api/chat request survives Ollama -> chat completions -> Ollama (messages, images,
 *    tool calls and results, options, format, tools, stream with its default);
 *  - an answer survives chat completion -> /api/chat answer (content, thinking, tool calls,
 *    done_reason, counts);
 *  - for any chunking of a chat stream, the NDJSON stream is well formed (done:false lines,
 *    one done:true line last) and adds up to the non-stream answer; /api/generate alike from
 *    text-completion chunks.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { ChatChunk, ChatCompletion, ChatContentPart, ChatRequest } from '../chat-types.ts';
import type { OllamaMessage } from './ollama-types.ts';
import { ollamaChatToChatRequest } from './request.ts';
import { chatCompletionToOllamaChat, completionToOllamaGenerate } from './response.ts';
import { OllamaStreamTranslator } from './stream.ts';

const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 });
const name = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,11}$/);
const jsonObject = fc
  .dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })
  .map((value) => JSON.parse(JSON.stringify(value)) as Record<string, unknown>);
const image = fc
  .tuple(fc.constantFrom('iVBORw0KGgo', '/9j/4AAQ', 'R0lGODlh', 'UklGRiQA'), fc.base64String({ maxLength: 16 }))
  .map(([head, rest]) => head + rest);
const finite = (min: number, max: number) => fc.double({ min, max, noNaN: true }).map((v) => v + 0);

interface OllamaChatRequest {
  model: string;
  messages: OllamaMessage[];
  options?: Record<string, unknown>;
  format?: unknown;
  tools?: unknown[];
  stream?: boolean;
}

const requestArbitrary: fc.Arbitrary<OllamaChatRequest> = (() => {
  let ids = 0;
  const message = fc.oneof(
    fc.record({ role: fc.constant('system' as const), content: text }),
    fc.record(
      {
        role: fc.constant('user' as const),
        content: fc.oneof(text, fc.constant('')),
        images: fc.array(image, { minLength: 1, maxLength: 2 }),
      },
      { requiredKeys: ['role', 'content'] },
    ),
    fc.record(
      {
        role: fc.constant('assistant' as const),
        content: fc.oneof(text, fc.constant('')),
        tool_calls: fc.array(
          fc.tuple(name, jsonObject).map(([n, args]) => ({ id: `call_${ids++}`, function: { name: n, arguments: args } })),
          { minLength: 1, maxLength: 2 },
        ),
      },
      { requiredKeys: ['role', 'content'] },
    ),
    fc.record({ role: fc.constant('tool' as const), content: text, tool_call_id: fc.nat(50).map((n) => `call_${n}`) }),
  );
  const options = fc.record(
    {
      temperature: finite(0, 2),
      top_p: finite(0, 1),
      top_k: fc.integer({ min: 1, max: 100 }),
      num_predict: fc.integer({ min: 1, max: 4096 }),
      stop: fc.array(text, { minLength: 1, maxLength: 3 }),
      seed: fc.integer({ min: 0, max: 1_000_000 }),
      presence_penalty: finite(-2, 2),
      frequency_penalty: finite(-2, 2),
    },
    { requiredKeys: [] },
  );
  const tool = fc.record({
    type: fc.constant('function'),
    function: fc.record({ name, description: text, parameters: jsonObject.map((p) => ({ type: 'object', properties: p })) }),
  });
  return fc.record(
    {
      model: text,
      messages: fc.array(message, { maxLength: 6 }),
      options,
      format: fc.oneof(
        fc.constant('json'),
        jsonObject.map((p) => ({ type: 'object', properties: p })),
      ),
      tools: fc.array(tool, { minLength: 1, maxLength: 2 }),
      stream: fc.boolean(),
    },
    { requiredKeys: ['model', 'messages'] },
  ) as fc.Arbitrary<OllamaChatRequest>;
})();

/** Test-only inverse: the chat request back to the /api/chat request it came from. */
function chatToOllama(chat: ChatRequest): OllamaChatRequest {
  const messages: OllamaMessage[] = chat.messages.map((message) => {
    if (message.role === 'tool') return { role: 'tool', content: message.content, tool_call_id: message.tool_call_id };
    if (message.role === 'assistant') {
      const base: OllamaMessage = { role: 'assistant', content: message.content ?? '' };
      if (message.tool_calls)
        base.tool_calls = message.tool_calls.map((c) => ({
          id: c.id,
          function: { name: c.function.name, arguments: JSON.parse(c.function.arguments) },
        }));
      return base;
    }
    if (message.role === 'system' || typeof message.content === 'string') return { role: message.role, content: message.content as string };
    const parts = message.content as ChatContentPart[];
    return {
      role: 'user',
      content: parts
        .filter((p) => p.type === 'text')
        .map((p) => (p as { text: string }).text)
        .join(''),
      images: parts
        .filter((p) => p.type === 'image_url')
        .map((p) => (p as { image_url: { url: string } }).image_url.url.replace(/^data:[^;]+;base64,/, '')),
    };
  });
  const request: OllamaChatRequest = { model: chat.model, messages, stream: chat.stream === true };
  const options: Record<string, unknown> = {};
  for (const key of ['temperature', 'top_p', 'top_k', 'seed', 'presence_penalty', 'frequency_penalty', 'stop'] as const) {
    if (chat[key] !== undefined) options[key] = chat[key];
  }
  if (chat.max_tokens !== undefined) options.num_predict = chat.max_tokens;
  if (Object.keys(options).length > 0) request.options = options;
  if (chat.response_format) request.format = chat.response_format.type === 'json_object' ? 'json' : chat.response_format.json_schema.schema;
  if (chat.tools) request.tools = chat.tools;
  return request;
}

function canonical(request: OllamaChatRequest): OllamaChatRequest {
  const out: OllamaChatRequest = { ...request, stream: request.stream ?? true };
  if (out.options && Object.keys(out.options).length === 0) delete out.options;
  return out;
}

// ---- answers -------------------------------------------------------------------------------

interface Answer {
  reasoning: string | null;
  text: string | null;
  tools: Array<{ id: string; name: string; input: Record<string, unknown> }>;
  finish: 'stop' | 'length' | 'tool_calls';
  usage: { prompt: number; completion: number };
}

const answerArbitrary: fc.Arbitrary<Answer> = fc
  .record({
    reasoning: fc.option(text, { nil: null }),
    text: fc.option(text, { nil: null }),
    tools: fc.array(fc.tuple(name, jsonObject), { maxLength: 3 }),
    finish: fc.constantFrom('stop' as const, 'length' as const),
    usage: fc.record({ prompt: fc.nat(10_000), completion: fc.nat(10_000) }),
  })
  .map((a) => ({
    ...a,
    tools: a.tools.map(([n, input], i) => ({ id: `call_${i}`, name: n, input })),
    finish: a.tools.length > 0 && a.finish === 'stop' ? ('tool_calls' as const) : a.finish,
  }));

function asCompletion(answer: Answer): ChatCompletion {
  return {
    choices: [
      {
        message: {
          content: answer.text,
          ...(answer.reasoning ? { reasoning_content: answer.reasoning } : {}),
          ...(answer.tools.length > 0
            ? {
                tool_calls: answer.tools.map((t) => ({
                  id: t.id,
                  type: 'function',
                  function: { name: t.name, arguments: JSON.stringify(t.input) },
                })),
              }
            : {}),
        },
        finish_reason: answer.finish,
      },
    ],
    usage: { prompt_tokens: answer.usage.prompt, completion_tokens: answer.usage.completion },
  };
}

function expectedMessage(answer: Answer): OllamaMessage {
  const message: OllamaMessage = { role: 'assistant', content: answer.text ?? '' };
  if (answer.reasoning) message.thinking = answer.reasoning;
  if (answer.tools.length > 0)
    message.tool_calls = answer.tools.map((t, index) => ({ id: t.id, function: { index, name: t.name, arguments: t.input } }));
  return message;
}

function cut(value: string, sizes: number[]): string[] {
  const chars = Array.from(value);
  const pieces: string[] = [];
  for (let i = 0, k = 0; i < chars.length; k++) {
    const size = Math.max(1, sizes[k % sizes.length] ?? chars.length);
    pieces.push(chars.slice(i, i + size).join(''));
    i += size;
  }
  return pieces;
}

function asChunks(answer: Answer, sizes: number[], picks: number[]): ChatChunk[] {
  const chunk = (delta: object, finish: string | null = null): ChatChunk => ({ choices: [{ index: 0, delta, finish_reason: finish }] });
  const sequences: ChatChunk[][] = [];
  if (answer.reasoning) sequences.push(cut(answer.reasoning, sizes).map((p) => chunk({ reasoning_content: p })));
  if (answer.text) sequences.push(cut(answer.text, sizes).map((p) => chunk({ content: p })));
  answer.tools.forEach((tool, index) => {
    sequences.push(
      cut(JSON.stringify(tool.input), sizes).map((piece, i) =>
        chunk({
          tool_calls: [
            i === 0
              ? { index, id: tool.id, type: 'function', function: { name: tool.name, arguments: piece } }
              : { index, function: { arguments: piece } },
          ],
        }),
      ),
    );
  });
  const body: ChatChunk[] = [];
  for (let k = 0; ; k++) {
    const live = sequences.filter((s) => s.length > 0);
    if (live.length === 0) break;
    body.push(live[(picks[k % picks.length] ?? 0) % live.length]!.shift()!);
  }
  return [
    chunk({ role: 'assistant' }),
    ...body,
    chunk({}, answer.finish),
    { choices: [], usage: { prompt_tokens: answer.usage.prompt, completion_tokens: answer.usage.completion } },
  ];
}

/** What a line of the translated stream may carry (each line has some of it). */
interface NdjsonLine {
  model: string;
  created_at: string;
  done: boolean;
  done_reason?: string;
  message: { content: string; thinking?: string; tool_calls?: unknown[] };
  response: string;
  total_duration: number;
  prompt_eval_duration: number;
  eval_duration: number;
}

/** A clock that moves 7 ms per reading, so durations are real numbers. */
function steppingClock() {
  let now = 1_700_000_000_000;
  return { startedAtMs: now, clock: () => (now += 7) };
}

const sizes = fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 6 });
const picks = fc.array(fc.nat(7), { minLength: 1, maxLength: 8 });

describe('Ollama API <-> chat completions', () => {
  test('an /api/chat request survives Ollama -> chat -> Ollama', () => {
    fc.assert(
      fc.property(requestArbitrary, (request) => {
        const translated = ollamaChatToChatRequest(request, { acceptsTopK: true });
        expect(translated.path).toBe('/v1/chat/completions');
        expect(translated.stream).toBe(request.stream ?? true);
        expect(chatToOllama(translated.body as unknown as ChatRequest)).toEqual(canonical(request));
      }),
      { numRuns: 300 },
    );
  });

  test('an answer survives chat completion -> /api/chat answer', () => {
    fc.assert(
      fc.property(answerArbitrary, (answer) => {
        const reply = chatCompletionToOllamaChat(asCompletion(answer), 'm', steppingClock());
        expect(reply.message).toEqual(expectedMessage(answer));
        expect(reply).toMatchObject({ model: 'm', done: true, done_reason: answer.finish === 'length' ? 'length' : 'stop' });
        expect(reply.prompt_eval_count).toBe(answer.usage.prompt);
        expect(reply.eval_count).toBe(answer.usage.completion);
      }),
      { numRuns: 300 },
    );
  });

  test('any chunking of a chat stream gives NDJSON that adds up to the non-stream answer', () => {
    fc.assert(
      fc.property(answerArbitrary, sizes, picks, (answer, cuts, order) => {
        const translator = new OllamaStreamTranslator({ model: 'm', mode: 'chat', timing: steppingClock() });
        let ndjson = '';
        for (const chunk of asChunks(answer, cuts, order)) ndjson += translator.push(chunk);
        ndjson += translator.finish();
        expect(ndjson.endsWith('\n')).toBe(true);
        const lines = ndjson
          .trimEnd()
          .split('\n')
          .map((line) => JSON.parse(line) as NdjsonLine);
        const last = lines.at(-1)!;
        expect(lines.slice(0, -1).every((line) => line.done === false && line.model === 'm' && typeof line.created_at === 'string')).toBe(
          true,
        );
        expect(last).toMatchObject({
          done: true,
          done_reason: answer.finish === 'length' ? 'length' : 'stop',
          prompt_eval_count: answer.usage.prompt,
          eval_count: answer.usage.completion,
        });
        expect(Math.abs(last.total_duration - last.prompt_eval_duration - last.eval_duration)).toBeLessThanOrEqual(1);
        expect(lines.map((l) => l.message.content).join('')).toBe(answer.text ?? '');
        expect(lines.map((l) => l.message.thinking ?? '').join('')).toBe(answer.reasoning ?? '');
        const calls = lines.flatMap((l) => l.message.tool_calls ?? []);
        expect(calls).toEqual(expectedMessage(answer).tool_calls ?? []);
      }),
      { numRuns: 300 },
    );
  });

  test('/api/generate from a text-completions stream adds up to the non-stream answer', () => {
    fc.assert(
      fc.property(text, sizes, fc.constantFrom('stop', 'length'), (answer, cuts, finish) => {
        const translator = new OllamaStreamTranslator({ model: 'm', mode: 'generate', timing: steppingClock() });
        const chunks = [
          ...cut(answer, cuts).map((piece) => ({ choices: [{ index: 0, text: piece, finish_reason: null }] })),
          { choices: [{ index: 0, text: '', finish_reason: finish }] },
        ];
        const ndjson = chunks.map((c) => translator.push(c)).join('') + translator.finish();
        const lines = ndjson
          .trimEnd()
          .split('\n')
          .map((line) => JSON.parse(line) as NdjsonLine);
        expect(lines.map((l) => l.response).join('')).toBe(answer);
        expect(lines.at(-1)).toMatchObject({ done: true, done_reason: finish });
        const whole = completionToOllamaGenerate({ choices: [{ text: answer, finish_reason: finish }] }, 'm', steppingClock());
        expect(whole).toMatchObject({ response: answer, done: true, done_reason: finish });
      }),
      { numRuns: 200 },
    );
  });
});
