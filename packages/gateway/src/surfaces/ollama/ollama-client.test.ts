/**
 * The official `ollama` client, unmodified, against (a) an OpenAI-only node reached through
 * the translators (testing/translating-server.ts over a fake upstream process) and (b) the
 * fake Ollama's own API: list, ps, version, show, chat and generate (stream and not), tool
 * calls, embed and the legacy embeddings, and errors parse as the client expects on both.
 */
import { Ollama } from 'ollama';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startFakeLlmServer, type FakeLlmProcess } from '@ai-lb/testkit';
import { startTranslatingServer, type TranslatingServer } from '../testing/translating-server.ts';

let upstream: FakeLlmProcess;
let nativeNode: FakeLlmProcess;
let translating: TranslatingServer;

beforeAll(async () => {
  [upstream, nativeNode] = await Promise.all([
    startFakeLlmServer({ kind: 'openai', models: ['chat-model'] }),
    startFakeLlmServer({ kind: 'ollama', models: ['chat-model', 'other:latest'] }),
  ]);
  translating = await startTranslatingServer(upstream.url);
});

afterAll(async () => {
  await translating?.close();
  await Promise.all([upstream?.stop(), nativeNode?.stop()]);
});

const tools = [
  {
    type: 'function' as const,
    function: {
      name: 'get_weather',
      description: 'weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];

describe.each([
  ['translated (OpenAI-only node)', () => translating.url],
  ['native (Ollama)', () => nativeNode.url],
])('%s', (_name, host) => {
  const client = () => new Ollama({ host: host() });

  test('list, ps, version and show parse', async () => {
    const { models } = await client().list();
    expect(models.map((m) => m.name)).toContain('chat-model');
    expect(models[0]).toMatchObject({ model: expect.any(String), digest: expect.any(String), details: expect.any(Object) });
    expect(Array.isArray((await client().ps()).models)).toBe(true);
    expect((await client().version()).version).toMatch(/^\d+\.\d+/);
    expect(await client().show({ model: 'chat-model' })).toMatchObject({ details: expect.any(Object) });
  });

  test('chat without streaming: content, done_reason and counts', async () => {
    const reply = await client().chat({
      model: 'chat-model',
      messages: [{ role: 'user', content: 'hi' }],
      options: { temperature: 0.1, num_predict: 16 },
    });
    expect(reply).toMatchObject({
      message: { role: 'assistant', content: 'Hello from fake' },
      done: true,
      done_reason: 'stop',
      prompt_eval_count: 5,
      eval_count: 3,
    });
    expect(reply.total_duration).toBeGreaterThanOrEqual(0);
  });

  test('chat streams NDJSON: the parts add up, the last one is done', async () => {
    const parts = [];
    for await (const part of await client().chat({ model: 'chat-model', messages: [{ role: 'user', content: 'hi' }], stream: true }))
      parts.push(part);
    expect(parts.map((p) => p.message.content).join('')).toBe('Hello from fake');
    expect(parts.at(-1)).toMatchObject({ done: true, done_reason: 'stop', eval_count: 3 });
    expect(parts.slice(0, -1).every((p) => !p.done)).toBe(true);
  });

  test('tool calls come back whole, arguments as an object', async () => {
    const reply = await client().chat({ model: 'chat-model', messages: [{ role: 'user', content: 'weather in Paris?' }], tools });
    expect(reply.message.tool_calls?.[0]?.function).toMatchObject({ name: 'get_weather', arguments: { city: 'fake' } });
    const parts = [];
    for await (const part of await client().chat({
      model: 'chat-model',
      messages: [{ role: 'user', content: 'weather?' }],
      tools,
      stream: true,
    }))
      parts.push(part);
    expect(parts.flatMap((p) => p.message.tool_calls ?? []).map((c) => c.function)).toEqual([
      expect.objectContaining({ name: 'get_weather', arguments: { city: 'fake' } }),
    ]);
  });

  test('generate, stream and not', async () => {
    expect(await client().generate({ model: 'chat-model', prompt: 'hi' })).toMatchObject({ response: 'Hello from fake', done: true });
    const parts = [];
    for await (const part of await client().generate({ model: 'chat-model', prompt: 'hi', stream: true })) parts.push(part);
    expect(parts.map((p) => p.response).join('')).toBe('Hello from fake');
    expect(parts.at(-1)?.done).toBe(true);
  });

  test('embed and the legacy embeddings', async () => {
    expect(await client().embed({ model: 'chat-model', input: ['a', 'b'] })).toMatchObject({
      embeddings: [expect.any(Array), expect.any(Array)],
    });
    expect((await client().embeddings({ model: 'chat-model', prompt: 'a' })).embedding).toHaveLength(3);
  });

  test('an upstream failure is a ResponseError with the status and a message', async () => {
    const error = await client()
      .chat({ model: 'fault-500', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ResponseError', status_code: 500, error: expect.stringContaining('fake upstream error 500') });
  });

  test('a stream cut after its first lines ends in an error, not a quiet end', async () => {
    const consume = async () => {
      for await (const _part of await client().chat({
        model: 'fault-cut-stream',
        messages: [{ role: 'user', content: 'x' }],
        stream: true,
      })) {
        // drain
      }
    };
    await expect(consume()).rejects.toThrow();
  });
});
