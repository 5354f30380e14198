/** The Messages translation case by case: the shapes the properties do not pin down, and bad input. */
import { GatewayError } from '@ai-lb/shared';
import { describe, expect, test } from 'vitest';
import { UpstreamAnswerError } from '../upstream-answer-error.ts';
import { estimateCountTokens, textTokens } from './count-tokens.ts';
import { isAnthropicErrorBody } from './errors.ts';
import { messagesToChatRequest } from './request.ts';
import { chatCompletionToMessage } from './response.ts';
import { MessagesStreamTranslator } from './stream.ts';
import { accumulateMessage, assertWellFormed, parseAnthropicSse } from './testing/anthropic-sse.ts';

const base = { model: 'm', max_tokens: 64 };

function badParam(body: unknown): string | null | undefined {
  try {
    messagesToChatRequest(body, { acceptsTopK: true });
  } catch (error) {
    if (error instanceof GatewayError && error.code === 'invalid_request') return error.param;
    throw error;
  }
  return undefined;
}

describe('request', () => {
  test('system blocks, images from base64 and url, tool results before the rest of the user turn', () => {
    const { chat } = messagesToChatRequest(
      {
        ...base,
        system: [
          { type: 'text', text: 'You are terse.', cache_control: { type: 'ephemeral' } },
          { type: 'text', text: 'Answer in English.' },
        ],
        metadata: { user_id: 'u1' },
        messages: [
          { role: 'user', content: 'weather?' },
          {
            role: 'assistant',
            content: [
              { type: 'thinking', thinking: 'call the tool', signature: 'sig' },
              { type: 'text', text: 'Checking.' },
              { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
            ],
          },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'and this picture:' },
              { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '21°C' }] },
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0K' } },
              { type: 'image', source: { type: 'url', url: 'https://example.test/a.jpg' } },
            ],
          },
        ],
      },
      { acceptsTopK: true },
    );
    expect(chat).toEqual({
      model: 'm',
      max_tokens: 64,
      messages: [
        { role: 'system', content: 'You are terse.\nAnswer in English.' },
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: 'Checking.',
          tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
        },
        { role: 'tool', tool_call_id: 'toolu_1', content: '21°C' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'and this picture:' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0K' } },
            { type: 'image_url', image_url: { url: 'https://example.test/a.jpg' } },
          ],
        },
      ],
    });
  });

  test('an image inside a tool result follows the tool message as user content', () => {
    const { chat } = messagesToChatRequest(
      {
        ...base,
        messages: [
          {
            role: 'user',
            content: [
              {
                type: 'tool_result',
                tool_use_id: 't',
                content: [
                  { type: 'text', text: 'screenshot:' },
                  { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/' } },
                ],
              },
            ],
          },
        ],
      },
      { acceptsTopK: true },
    );
    expect(chat.messages).toEqual([
      { role: 'tool', tool_call_id: 't', content: 'screenshot:' },
      { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/jpeg;base64,/9j/' } }] },
    ]);
  });

  test('sampling fields, stop sequences, tools and tool_choice; stream asks for usage', () => {
    const translated = messagesToChatRequest(
      {
        ...base,
        messages: [{ role: 'user', content: 'hi' }],
        temperature: 0.2,
        top_p: 0.9,
        top_k: 40,
        stop_sequences: ['END'],
        stream: true,
        tools: [{ name: 'f', description: 'does f', input_schema: { type: 'object', properties: { a: { type: 'string' } } } }],
        tool_choice: { type: 'any', disable_parallel_tool_use: true },
      },
      { acceptsTopK: false },
    );
    expect(translated.stream).toBe(true);
    expect(translated.stopSequences).toEqual(['END']);
    expect(translated.chat).toMatchObject({
      temperature: 0.2,
      top_p: 0.9,
      stop: ['END'],
      stream: true,
      stream_options: { include_usage: true },
      tools: [{ type: 'function', function: { name: 'f', description: 'does f', parameters: { type: 'object' } } }],
      tool_choice: 'required',
      parallel_tool_calls: false,
    });
    expect(translated.chat).not.toHaveProperty('top_k'); // the upstream is not known to take it
  });

  test.each([
    [{ max_tokens: 5, messages: [] }, 'model'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }] }, 'max_tokens'],
    [{ ...base, max_tokens: 0, messages: [{ role: 'user', content: 'x' }] }, 'max_tokens'],
    [{ ...base, messages: [] }, 'messages'],
    [{ ...base, messages: 'hi' }, 'messages'],
    [{ ...base, messages: [{ role: 'system', content: 'x' }] }, 'messages.0.role'],
    [{ ...base, messages: [{ role: 'user', content: [{ type: 'text' }] }] }, 'messages.0.content.0.text'],
    [{ ...base, messages: [{ role: 'user', content: [{ type: 'audio' }] }] }, 'messages.0.content.0.type'],
    [
      { ...base, messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', data: 'JVBER' } }] }] },
      'messages.0.content.0.source.type',
    ],
    [{ ...base, messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, 'tools.0.type'],
    [{ ...base, messages: [{ role: 'user', content: 'x' }], tool_choice: { type: 'maybe' } }, 'tool_choice.type'],
    [{ ...base, messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }, 'temperature'],
    [{ ...base, messages: [{ role: 'user', content: 'x' }], stop_sequences: [1] }, 'stop_sequences'],
    [null, 'body'],
  ])('bad input %j names %s', (body, param) => {
    expect(badParam(body)).toBe(param);
  });
});

describe('response', () => {
  const options = { model: 'resolved', stopSequences: [] as string[], id: 'msg_1' };

  test('a plain answer', () => {
    const message = chatCompletionToMessage(
      {
        choices: [{ message: { role: 'assistant', content: 'Hi!' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 9, completion_tokens: 2 },
      },
      options,
    );
    expect(message).toEqual({
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'resolved',
      content: [{ type: 'text', text: 'Hi!' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 9, output_tokens: 2 },
    });
  });

  test('tool calls: ids kept, arguments parsed (Ollama sends an object), finish "stop" with tool calls is tool_use', () => {
    const message = chatCompletionToMessage(
      {
        choices: [
          {
            message: {
              content: null,
              tool_calls: [
                { id: 'call_a', type: 'function', function: { name: 'f', arguments: '{"x":1}' } },
                { type: 'function', function: { name: 'g', arguments: { y: [2] } } },
                { id: 'call_c', type: 'function', function: { name: 'h', arguments: '' } },
              ],
            },
            finish_reason: 'stop',
          },
        ],
      },
      options,
    );
    expect(message.stop_reason).toBe('tool_use');
    expect(message.content).toEqual([
      { type: 'tool_use', id: 'call_a', name: 'f', input: { x: 1 } },
      { type: 'tool_use', id: expect.stringMatching(/^toolu_/), name: 'g', input: { y: [2] } },
      { type: 'tool_use', id: 'call_c', name: 'h', input: {} },
    ]);
    expect(message.usage).toEqual({ input_tokens: 0, output_tokens: 0 });
  });

  test('a stop sequence is reported only when the server names one the client asked for', () => {
    const answer = (stop_reason: unknown) => ({ choices: [{ message: { content: 'x' }, finish_reason: 'stop', stop_reason }] });
    expect(chatCompletionToMessage(answer('END'), { ...options, stopSequences: ['END'] })).toMatchObject({
      stop_reason: 'stop_sequence',
      stop_sequence: 'END',
    });
    expect(chatCompletionToMessage(answer(128001), { ...options, stopSequences: ['END'] })).toMatchObject({ stop_reason: 'end_turn' });
    expect(chatCompletionToMessage({ choices: [{ message: {}, finish_reason: 'length' }] }, options).stop_reason).toBe('max_tokens');
    expect(chatCompletionToMessage({ choices: [{ message: {}, finish_reason: 'content_filter' }] }, options).stop_reason).toBe('refusal');
  });

  test.each([
    [{ object: 'list', data: [] }],
    [{ choices: [] }],
    ['not an object'],
    [{ choices: [{ message: { tool_calls: [{ function: { name: 'f', arguments: '{"x":' } }] } }] }],
    [{ choices: [{ message: { tool_calls: [{ function: { name: 'f', arguments: '[1,2]' } }] } }] }],
    [{ choices: [{ message: { tool_calls: [{ function: { arguments: '{}' } }] } }] }],
  ])('an answer it cannot translate (%j) is an UpstreamAnswerError, never a lossy Message', (answer) => {
    expect(() => chatCompletionToMessage(answer, options)).toThrow(UpstreamAnswerError);
  });
});

describe('stream', () => {
  const translate = (chunks: unknown[], finish = true) => {
    const translator = new MessagesStreamTranslator({ model: 'resolved', stopSequences: [], id: 'msg_s' });
    let sse = chunks.map((chunk) => translator.push(chunk)).join('');
    if (finish) sse += translator.finish();
    return parseAnthropicSse(sse);
  };
  const delta = (d: object, finish: string | null = null) => ({ choices: [{ index: 0, delta: d, finish_reason: finish }] });

  test('the exact event sequence of a text answer', () => {
    const events = translate([
      delta({ role: 'assistant', content: '' }),
      delta({ content: 'Hel' }),
      delta({ content: 'lo' }, 'stop'),
      { choices: [], usage: { prompt_tokens: 3, completion_tokens: 2 } },
    ]);
    expect(events.map((e) => e.data)).toEqual([
      {
        type: 'message_start',
        message: {
          id: 'msg_s',
          type: 'message',
          role: 'assistant',
          model: 'resolved',
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: 0, output_tokens: 0 },
        },
      },
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hel' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'lo' } },
      { type: 'content_block_stop', index: 0 },
      { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { input_tokens: 3, output_tokens: 2 } },
      { type: 'message_stop' },
    ]);
  });

  test('a tool call whose name comes after its first chunk waits for it', () => {
    const events = translate([
      delta({ tool_calls: [{ index: 0, id: 'call_1', function: { arguments: '{"a"' } }] }),
      delta({ tool_calls: [{ index: 0, function: { name: 'f', arguments: ':1}' } }] }),
      delta({}, 'tool_calls'),
    ]);
    assertWellFormed(events);
    const message = accumulateMessage(events);
    expect(message.content).toEqual([{ type: 'tool_use', id: 'call_1', name: 'f', input: { a: 1 } }]);
    expect(message.stop_reason).toBe('tool_use');
  });

  test('a tool call that never gets a name ends the stream with an error at the end', () => {
    const events = translate([delta({ tool_calls: [{ index: 0, id: 'c', function: { arguments: '{}' } }] }), delta({}, 'tool_calls')]);
    expect(events.at(-1)?.data).toEqual({
      type: 'error',
      error: { type: 'api_error', message: 'the upstream streamed a tool call without a function name' },
    });
  });

  test('text that arrives while a tool call is still streaming waits, then follows as its own block', () => {
    const events = translate([
      delta({ tool_calls: [{ index: 0, id: 'c', function: { name: 'f', arguments: '{"a":' } }] }),
      delta({ content: 'meanwhile' }),
      delta({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] }),
      delta({}, 'tool_calls'),
    ]);
    assertWellFormed(events);
    expect(accumulateMessage(events).content).toEqual([
      { type: 'tool_use', id: 'c', name: 'f', input: { a: 1 } },
      { type: 'text', text: 'meanwhile' },
    ]);
  });

  test('an upstream that stops before finish_reason ends with an error event, not a truncated success', () => {
    const events = translate([delta({ content: 'partial' })]);
    expect(events.at(-1)).toEqual({
      event: 'error',
      data: { type: 'error', error: { type: 'api_error', message: 'the upstream stream ended before the answer was finished' } },
    });
    expect(events.some((e) => e.event === 'message_stop')).toBe(false);
  });

  test('an in-band upstream error becomes the error event and ends the stream', () => {
    const translator = new MessagesStreamTranslator({ model: 'm', stopSequences: [] });
    const first = parseAnthropicSse(
      translator.push(delta({ content: 'a' })) + translator.push({ error: { message: 'CUDA out of memory' } }),
    );
    expect(first.at(-1)?.data).toEqual({ type: 'error', error: { type: 'api_error', message: 'CUDA out of memory' } });
    expect(translator.isEnded).toBe(true);
    expect(translator.push(delta({ content: 'more' })) + translator.finish()).toBe('');
  });

  test('tool arguments that end as something other than a JSON object end the stream with an error', () => {
    const events = translate([
      delta({ tool_calls: [{ index: 0, id: 'c', function: { name: 'f', arguments: '{"a":' } }] }),
      delta({}, 'tool_calls'),
    ]);
    expect(events.at(-1)?.data).toMatchObject({ type: 'error', error: { type: 'api_error' } });
  });

  test('arguments for a tool call that was already complete are an upstream fault, reported', () => {
    const events = translate([
      delta({ tool_calls: [{ index: 0, id: 'c0', function: { name: 'f', arguments: '{}' } }] }),
      delta({ tool_calls: [{ index: 1, id: 'c1', function: { name: 'g', arguments: '{}' } }] }),
      delta({ tool_calls: [{ index: 0, function: { arguments: '  ' } }] }), // whitespace: harmless
      delta({ tool_calls: [{ index: 0, function: { arguments: '{"late":1}' } }] }),
    ]);
    expect(events.at(-1)?.data).toMatchObject({ type: 'error', error: { type: 'api_error', message: expect.stringContaining('"f"') } });
  });

  test('the caller can end the stream with an error (an upstream cut after the first byte)', () => {
    const translator = new MessagesStreamTranslator({ model: 'm', stopSequences: [] });
    translator.push(delta({ content: 'a' }));
    expect(parseAnthropicSse(translator.fail('overloaded_error', 'node went away')).at(-1)?.data).toEqual({
      type: 'error',
      error: { type: 'overloaded_error', message: 'node went away' },
    });
  });
});

describe('errors', () => {
  test('an upstream body that already is Anthropic’s is recognised (a native node’s error passes through)', () => {
    expect(isAnthropicErrorBody({ type: 'error', error: { type: 'overloaded_error', message: 'busy' } })).toBe(true);
    expect(isAnthropicErrorBody({ error: { message: 'x', type: 'invalid_request_error' } })).toBe(false);
    expect(isAnthropicErrorBody({ type: 'error', error: 'x' })).toBe(false);
  });
});

describe('count_tokens estimate', () => {
  test('leans high: ASCII at 4 characters a token, other characters one each, framing per message', () => {
    expect(textTokens('abcdefgh')).toBe(2);
    expect(textTokens('日本語')).toBe(3);
    const { input_tokens } = estimateCountTokens({ model: 'm', system: 'be brief', messages: [{ role: 'user', content: 'hello world!' }] });
    expect(input_tokens).toBe(4 + 2 + 4 + 3);
  });

  test('validates like /v1/messages (no max_tokens needed)', () => {
    expect(() => estimateCountTokens({ model: 'm', messages: [] })).toThrow(GatewayError);
    expect(
      estimateCountTokens({ model: 'm', messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'url', url: 'u' } }] }] })
        .input_tokens,
    ).toBe(1604);
  });
});
