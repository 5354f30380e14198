/**
 * Property tests of the Messages <-> chat-completions translation (fast-check):
 *  - a Messages request survives Messages -> chat -> Messages (text, images, tool calls and
 *    results, sampling fields, tools, tool_choice);
 *  - a Message survives Message -> chat completion -> Message (text, thinking, tool calls,
 *    stop reasons, usage);
 *  - for any chunking and interleaving of a chat stream, the stream translator produces a
 *    well-formed Anthropic event sequence whose deltas add up to the non-stream answer.
 * The inverse translations live here: they exist only to state the round trips.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { ChatChunk, ChatCompletion, ChatContentPart, ChatMessage, ChatRequest } from '../chat-types.ts';
import type { AnthropicContentBlock, AnthropicMessage, AnthropicMessagesRequest, AnthropicRequestBlock } from './anthropic-types.ts';
import { messagesToChatRequest } from './request.ts';
import { chatCompletionToMessage } from './response.ts';
import { MessagesStreamTranslator } from './stream.ts';
import { accumulateMessage, assertWellFormed, parseAnthropicSse } from './testing/anthropic-sse.ts';

// ---- generators ---------------------------------------------------------------------------

const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 });
const name = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,11}$/);
/** A JSON object as it comes back from JSON.parse (no -0, no undefined). */
const jsonObject = fc
  .dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })
  .map((value) => JSON.parse(JSON.stringify(value)) as Record<string, unknown>);
const image = fc.oneof(
  fc.record({
    type: fc.constant('image' as const),
    source: fc.record({
      type: fc.constant('base64' as const),
      media_type: fc.constantFrom('image/png', 'image/jpeg', 'image/webp'),
      data: fc.base64String({ minLength: 4, maxLength: 24 }),
    }),
  }),
  fc.record({
    type: fc.constant('image' as const),
    source: fc.record({ type: fc.constant('url' as const), url: text.map((t) => `https://example.test/${encodeURIComponent(t)}.png`) }),
  }),
);
const textBlock = text.map((t) => ({ type: 'text' as const, text: t }));

function requestArbitrary(): fc.Arbitrary<AnthropicMessagesRequest> {
  let toolIds = 0;
  const toolUse = fc.tuple(name, jsonObject).map(([n, input]) => ({ type: 'tool_use' as const, id: `toolu_${toolIds++}`, name: n, input }));
  const toolResult = fc
    .tuple(fc.nat(99), text)
    .map(([id, content]) => ({ type: 'tool_result' as const, tool_use_id: `toolu_${id}`, content }));
  const userBlocks = fc
    .tuple(fc.array(toolResult, { maxLength: 2 }), fc.array(fc.oneof(textBlock, image), { maxLength: 3 }))
    .filter(([results, others]) => results.length + others.length > 0)
    .map(([results, others]) => [...results, ...others] as AnthropicRequestBlock[]);
  const assistantBlocks = fc
    .tuple(fc.array(textBlock, { maxLength: 2 }), fc.array(toolUse, { maxLength: 2 }))
    .filter(([texts, tools]) => texts.length + tools.length > 0)
    .map(([texts, tools]) => [...texts, ...tools] as AnthropicRequestBlock[]);
  const message = fc.oneof(
    fc.record({ role: fc.constant('user' as const), content: fc.oneof(text, userBlocks) }),
    fc.record({ role: fc.constant('assistant' as const), content: fc.oneof(text, assistantBlocks) }),
  );
  const tool = fc.record(
    { name, description: text, input_schema: jsonObject.map((props) => ({ type: 'object', properties: props })) },
    { requiredKeys: ['name', 'input_schema'] },
  );
  const toolChoice = fc.oneof(
    fc.record(
      { type: fc.constantFrom('auto' as const, 'any' as const), disable_parallel_tool_use: fc.constant(true) },
      { requiredKeys: ['type'] },
    ),
    fc.record(
      { type: fc.constant('tool' as const), name, disable_parallel_tool_use: fc.constant(true) },
      { requiredKeys: ['type', 'name'] },
    ),
    fc.constant({ type: 'none' as const }),
  );
  return fc.record(
    {
      model: text,
      max_tokens: fc.integer({ min: 1, max: 100_000 }),
      messages: fc.array(message, { minLength: 1, maxLength: 5 }),
      system: text,
      stop_sequences: fc.array(text, { minLength: 1, maxLength: 3 }),
      temperature: fc.double({ min: 0, max: 1, noNaN: true }).map((v) => v + 0), // no -0
      top_p: fc.double({ min: 0, max: 1, noNaN: true }).map((v) => v + 0),
      top_k: fc.integer({ min: 1, max: 100 }),
      tools: fc.array(tool, { minLength: 1, maxLength: 3 }),
      tool_choice: toolChoice,
      stream: fc.constant(true),
    },
    { requiredKeys: ['model', 'max_tokens', 'messages'] },
  ) as fc.Arbitrary<AnthropicMessagesRequest>;
}

// ---- inverse translations (test-only) -----------------------------------------------------

function chatToMessagesRequest(chat: ChatRequest): AnthropicMessagesRequest {
  const request: AnthropicMessagesRequest = { model: chat.model, max_tokens: chat.max_tokens!, messages: [] };
  let toolResults: AnthropicRequestBlock[] = [];
  const flushResults = () => {
    if (toolResults.length > 0) request.messages.push({ role: 'user', content: toolResults });
    toolResults = [];
  };
  for (const message of chat.messages) {
    if (message.role === 'system') request.system = message.content;
    else if (message.role === 'tool')
      toolResults.push({ type: 'tool_result', tool_use_id: message.tool_call_id, content: message.content });
    else if (message.role === 'user') {
      const blocks = typeof message.content === 'string' ? null : message.content.map(partToBlock);
      if (toolResults.length === 0) request.messages.push({ role: 'user', content: blocks ?? (message.content as string) });
      else
        request.messages.push({
          role: 'user',
          content: [...toolResults, ...(blocks ?? [{ type: 'text', text: message.content as string }])],
        });
      toolResults = [];
    } else {
      flushResults();
      request.messages.push(assistantFromChat(message));
    }
  }
  flushResults();
  if (chat.stop) request.stop_sequences = chat.stop;
  if (chat.temperature !== undefined) request.temperature = chat.temperature;
  if (chat.top_p !== undefined) request.top_p = chat.top_p;
  if (chat.top_k !== undefined) request.top_k = chat.top_k;
  if (chat.tools) {
    request.tools = chat.tools.map((t) => ({
      name: t.function.name,
      ...(t.function.description !== undefined ? { description: t.function.description } : {}),
      input_schema: t.function.parameters,
    }));
  }
  if (chat.tool_choice !== undefined) {
    const parallel = chat.parallel_tool_calls === false ? { disable_parallel_tool_use: true } : {};
    const choice = chat.tool_choice;
    if (choice === 'none') request.tool_choice = { type: 'none' };
    else if (choice === 'auto') request.tool_choice = { type: 'auto', ...parallel };
    else if (choice === 'required') request.tool_choice = { type: 'any', ...parallel };
    else request.tool_choice = { type: 'tool', name: choice.function.name, ...parallel };
  }
  if (chat.stream) request.stream = true;
  return request;
}

function partToBlock(part: ChatContentPart): AnthropicRequestBlock {
  if (part.type === 'text') return { type: 'text', text: part.text };
  const data = /^data:([^;]+);base64,(.*)$/s.exec(part.image_url.url);
  if (data) return { type: 'image', source: { type: 'base64', media_type: data[1]!, data: data[2]! } };
  return { type: 'image', source: { type: 'url', url: part.image_url.url } };
}

function assistantFromChat(message: Extract<ChatMessage, { role: 'assistant' }>) {
  if (!message.tool_calls) return { role: 'assistant' as const, content: message.content ?? '' };
  const blocks: AnthropicRequestBlock[] = message.content ? [{ type: 'text', text: message.content }] : [];
  for (const call of message.tool_calls) {
    blocks.push({ type: 'tool_use', id: call.id, name: call.function.name, input: JSON.parse(call.function.arguments) });
  }
  return { role: 'assistant' as const, content: blocks };
}

/** The request in the form the round trip gives back: what the translation may merge, merged. */
function canonical(request: AnthropicMessagesRequest): AnthropicMessagesRequest {
  const messages = request.messages.map((message) => {
    if (typeof message.content === 'string') return message;
    if (message.role === 'assistant') {
      const texts = message.content.filter((b) => b.type === 'text').map((b) => (b as { text: string }).text);
      const tools = message.content.filter((b) => b.type === 'tool_use');
      if (tools.length === 0) return { role: message.role, content: texts.join('') };
      return { role: message.role, content: [...(texts.join('') ? [{ type: 'text' as const, text: texts.join('') }] : []), ...tools] };
    }
    const results = message.content.filter((b) => b.type === 'tool_result');
    const others = message.content.filter((b) => b.type !== 'tool_result');
    const textOnly = others.every((b) => b.type === 'text');
    const joined = others.map((b) => (b as { text: string }).text).join('\n');
    if (results.length === 0) return { role: message.role, content: textOnly ? joined : others };
    if (others.length === 0) return { role: message.role, content: results };
    return { role: message.role, content: [...results, ...(textOnly ? [{ type: 'text' as const, text: joined }] : others)] };
  });
  // Consecutive tool-result-only user messages and a following user message come back as one.
  const merged: AnthropicMessagesRequest['messages'] = [];
  for (const message of messages) {
    const last = merged.at(-1);
    if (
      last?.role === 'user' &&
      message.role === 'user' &&
      Array.isArray(last.content) &&
      last.content.every((b) => b.type === 'tool_result')
    ) {
      const rest = typeof message.content === 'string' ? [{ type: 'text' as const, text: message.content }] : message.content;
      last.content = [...last.content, ...rest];
    } else {
      merged.push(message);
    }
  }
  const { tool_choice, ...rest } = request;
  return { ...rest, messages: merged, ...(tool_choice ? { tool_choice } : {}) };
}

// ---- the answer side ----------------------------------------------------------------------

interface Answer {
  reasoning: string | null;
  text: string | null;
  tools: Array<{ id: string; name: string; input: Record<string, unknown> }>;
  finish: 'stop' | 'length' | 'tool_calls' | 'stop_sequence';
  usage: { input: number; output: number; cached: number };
}

const stopSequences = ['</end>', 'STOP'];

const answerArbitrary: fc.Arbitrary<Answer> = fc
  .record({
    reasoning: fc.option(text, { nil: null }),
    text: fc.option(text, { nil: null }),
    tools: fc.array(fc.tuple(name, jsonObject), { maxLength: 3 }),
    finish: fc.constantFrom('stop' as const, 'length' as const, 'stop_sequence' as const),
    usage: fc.record({ input: fc.nat(10_000), output: fc.nat(10_000), cached: fc.nat(100) }),
  })
  .map((a) => ({
    ...a,
    tools: a.tools.map(([n, input], i) => ({ id: `call_${i}`, name: n, input })),
    // A message that calls tools ends because of them (unless cut by length).
    finish: a.tools.length > 0 && a.finish !== 'length' ? ('tool_calls' as const) : a.finish,
  }));

function asChatCompletion(answer: Answer): ChatCompletion {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    model: 'm',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
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
        finish_reason: answer.finish === 'stop_sequence' ? 'stop' : answer.finish,
        ...(answer.finish === 'stop_sequence' ? { stop_reason: stopSequences[1] } : {}),
      },
    ],
    usage: {
      prompt_tokens: answer.usage.input + answer.usage.cached,
      completion_tokens: answer.usage.output,
      total_tokens: answer.usage.input + answer.usage.cached + answer.usage.output,
      prompt_tokens_details: { cached_tokens: answer.usage.cached },
    },
  };
}

function expectedMessage(answer: Answer): AnthropicMessage {
  const content: AnthropicContentBlock[] = [];
  if (answer.reasoning) content.push({ type: 'thinking', thinking: answer.reasoning, signature: '' });
  if (answer.text) content.push({ type: 'text', text: answer.text });
  for (const t of answer.tools) content.push({ type: 'tool_use', id: t.id, name: t.name, input: t.input });
  const stop = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use', stop_sequence: 'stop_sequence' } as const;
  return {
    id: 'msg_fixed',
    type: 'message',
    role: 'assistant',
    model: 'resolved-model',
    content,
    stop_reason: stop[answer.finish],
    stop_sequence: answer.finish === 'stop_sequence' ? stopSequences[1]! : null,
    usage: {
      input_tokens: answer.usage.input,
      output_tokens: answer.usage.output,
      ...(answer.usage.cached > 0 ? { cache_read_input_tokens: answer.usage.cached } : {}),
    },
  };
}

/** The answer as a chat stream: every part cut into pieces, the pieces interleaved by `picks`. */
function asChunks(answer: Answer, cuts: number[], picks: number[]): ChatChunk[] {
  const chunk = (delta: object, finish: string | null = null, extra: object = {}): ChatChunk => ({
    id: 'chatcmpl-1',
    choices: [{ index: 0, delta, finish_reason: finish, ...extra }],
  });
  const sequences: ChatChunk[][] = [];
  if (answer.reasoning) sequences.push(cut(answer.reasoning, cuts).map((piece) => chunk({ reasoning_content: piece })));
  if (answer.text) sequences.push(cut(answer.text, cuts).map((piece) => chunk({ content: piece })));
  answer.tools.forEach((tool, index) => {
    const pieces = cut(JSON.stringify(tool.input), cuts);
    sequences.push(
      pieces.map((piece, i) =>
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
  let k = 0;
  for (;;) {
    const live = sequences.filter((s) => s.length > 0);
    if (live.length === 0) break;
    body.push(live[(picks[k++ % picks.length] ?? 0) % live.length]!.shift()!);
  }
  const finish = answer.finish === 'stop_sequence' ? 'stop' : answer.finish;
  const usage = asChatCompletion(answer).usage;
  return [
    chunk({ role: 'assistant', content: '' }),
    ...body,
    chunk({}, finish, answer.finish === 'stop_sequence' ? { stop_reason: stopSequences[1] } : {}),
    { id: 'chatcmpl-1', choices: [], usage },
  ];
}

function cut(value: string, sizes: number[]): string[] {
  const chars = Array.from(value);
  const pieces: string[] = [];
  for (let i = 0, k = 0; i < chars.length; k++) {
    const size = Math.max(1, sizes[k % Math.max(1, sizes.length)] ?? chars.length);
    pieces.push(chars.slice(i, i + size).join(''));
    i += size;
  }
  return pieces;
}

/** What must agree between a streamed and a non-stream Message (block order may differ). */
function essentials(message: AnthropicMessage) {
  const join = (type: string, key: string) =>
    message.content
      .filter((b) => b.type === type)
      .map((b) => (b as unknown as Record<string, string>)[key])
      .join('');
  return {
    text: join('text', 'text'),
    thinking: join('thinking', 'thinking'),
    tools: message.content
      .filter((b) => b.type === 'tool_use')
      .sort((a, b) => ((a as { id: string }).id < (b as { id: string }).id ? -1 : 1)),
    stop_reason: message.stop_reason,
    stop_sequence: message.stop_sequence,
    usage: message.usage,
    model: message.model,
  };
}

// ---- the properties -----------------------------------------------------------------------

describe('Messages <-> chat completions', () => {
  test('a request survives Messages -> chat -> Messages', () => {
    fc.assert(
      fc.property(requestArbitrary(), (request) => {
        const { chat, stopSequences: stops, stream } = messagesToChatRequest(request, { acceptsTopK: true });
        expect(stream).toBe(request.stream === true);
        expect(stops).toEqual(request.stop_sequences ?? []);
        expect(chatToMessagesRequest(chat)).toEqual(canonical(request));
      }),
      { numRuns: 300 },
    );
  });

  test('a Message survives Message -> chat completion -> Message', () => {
    fc.assert(
      fc.property(answerArbitrary, (answer) => {
        const message = chatCompletionToMessage(asChatCompletion(answer), { model: 'resolved-model', stopSequences, id: 'msg_fixed' });
        expect(message).toEqual(expectedMessage(answer));
      }),
      { numRuns: 300 },
    );
  });

  test('any chunking of a chat stream gives a well-formed event sequence that adds up to the non-stream answer', () => {
    const sizes = fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 6 });
    const picks = fc.array(fc.nat(7), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(answerArbitrary, sizes, picks, (answer, cuts, order) => {
        const translator = new MessagesStreamTranslator({ model: 'resolved-model', stopSequences, id: 'msg_fixed' });
        let sse = '';
        for (const chunk of asChunks(answer, cuts, order)) sse += translator.push(chunk);
        sse += translator.finish();
        const events = parseAnthropicSse(sse);
        assertWellFormed(events);
        expect(events.at(-1)?.event).toBe('message_stop');
        expect(translator.isEnded).toBe(true);
        expect(essentials(accumulateMessage(events))).toEqual(essentials(expectedMessage(answer)));
      }),
      { numRuns: 400 },
    );
  });
});
