/**
 * The official @anthropic-ai/sdk, unmodified, against (a) a node that does not serve
 * /v1/messages, reached through the translators (testing/translating-server.ts over a fake
 * OpenAI-only upstream process), and (b) the fake vLLM's native /v1/messages: text, streams,
 * tool use, count_tokens and errors parse as the SDK expects on both.
 */
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startFakeLlmServer, type FakeLlmProcess } from '@ai-lb/testkit';
import { startTranslatingServer, type TranslatingServer } from '../testing/translating-server.ts';

let upstream: FakeLlmProcess;
let nativeNode: FakeLlmProcess;
let translating: TranslatingServer;

beforeAll(async () => {
  [upstream, nativeNode] = await Promise.all([
    startFakeLlmServer({ kind: 'openai', models: ['chat-model'] }),
    startFakeLlmServer({ kind: 'vllm', models: ['chat-model'] }),
  ]);
  translating = await startTranslatingServer(upstream.url);
});

afterAll(async () => {
  await translating?.close();
  await Promise.all([upstream?.stop(), nativeNode?.stop()]);
});

const weatherTool = {
  name: 'get_weather',
  description: 'Current weather in a city',
  input_schema: { type: 'object' as const, properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] },
};

describe.each([
  ['translated (chat-only node)', () => translating.url],
  ['native (vLLM /v1/messages)', () => nativeNode.url],
])('%s', (_name, baseURL) => {
  const client = () => new Anthropic({ baseURL: baseURL(), apiKey: 'sk-test', maxRetries: 0 });

  test('messages.create: text, stop reason and usage', async () => {
    const message = await client().messages.create({
      model: 'chat-model',
      max_tokens: 64,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'Say hello' }],
    });
    expect(message).toMatchObject({
      type: 'message',
      role: 'assistant',
      content: [{ type: 'text', text: 'Hello from fake' }],
      stop_reason: 'end_turn',
      usage: { input_tokens: 5, output_tokens: 3 },
    });
    expect(message.id).toMatch(/^msg_/);
  });

  test('messages.stream: text deltas and the final message', async () => {
    const stream = client().messages.stream({ model: 'chat-model', max_tokens: 64, messages: [{ role: 'user', content: 'Say hello' }] });
    const deltas: string[] = [];
    stream.on('text', (delta) => deltas.push(delta));
    const final = await stream.finalMessage();
    expect(deltas.join('')).toBe('Hello from fake');
    expect(final.content).toMatchObject([{ type: 'text', text: 'Hello from fake' }]);
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage.output_tokens).toBe(3);
  });

  test('tool use, non-stream and stream, then the tool result turn', async () => {
    const request = {
      model: 'chat-model',
      max_tokens: 64,
      tools: [weatherTool],
      messages: [{ role: 'user' as const, content: 'Weather in Paris?' }],
    };
    const message = await client().messages.create(request);
    expect(message.stop_reason).toBe('tool_use');
    const call = message.content.find((block) => block.type === 'tool_use');
    expect(call).toMatchObject({ type: 'tool_use', name: 'get_weather', input: { city: 'fake', days: 1 } });

    const streamed = await client().messages.stream(request).finalMessage();
    expect(streamed.stop_reason).toBe('tool_use');
    expect(streamed.content.find((block) => block.type === 'tool_use')).toMatchObject({
      name: 'get_weather',
      input: { city: 'fake', days: 1 },
    });

    const answer = await client().messages.create({
      ...request,
      messages: [
        ...request.messages,
        { role: 'assistant', content: message.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: (call as { id: string }).id, content: '21°C' }] },
      ],
    });
    expect(answer.content).toEqual([expect.objectContaining({ type: 'text', text: 'Hello from fake' })]);
  });

  test('an upstream failure is an SDK APIError with Anthropic’s error type', async () => {
    const error = await client()
      .messages.create({ model: 'fault-500', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.InternalServerError);
    expect((error as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({ type: 'error', error: { type: 'api_error' } });
  });

  test('a stream cut after its first events ends in an error, not a truncated success', async () => {
    const stream = client().messages.stream({ model: 'fault-cut-stream', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
    await expect(stream.finalMessage()).rejects.toThrow();
  });

  test('count_tokens answers a number', async () => {
    const counted = await client().messages.countTokens({
      model: 'chat-model',
      messages: [{ role: 'user', content: 'How many tokens is this?' }],
    });
    expect(counted.input_tokens).toBeGreaterThan(0);
  });
});

test('translated: bad input is a 400 invalid_request_error naming the field', async () => {
  const client = new Anthropic({ baseURL: translating.url, apiKey: 'sk-test', maxRetries: 0 });
  const error = await client.messages
    .create({ model: 'chat-model', max_tokens: 0, messages: [{ role: 'user', content: 'x' }] })
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(Anthropic.BadRequestError);
  expect((error as InstanceType<typeof Anthropic.APIError>).error).toEqual({
    type: 'error',
    error: { type: 'invalid_request_error', message: 'max_tokens: is required and must be a positive integer' },
  });
});
