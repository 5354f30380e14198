/**
 * Every API surface through a real gateway, with each API's official client, against fake
 * upstreams of the kinds that serve it natively and of kinds that get it translated:
 * routing, failover before the first byte, caps and the queue, and errors in each API's
 * own format.
 */
import Anthropic from '@anthropic-ai/sdk';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { describe, expect, test } from 'vitest';
import type { NodeState } from '@ai-lb/shared';
import { fakeKindSurfaces, type FakeLlmProcess, type ServerFakeKind } from '@ai-lb/testkit';
import { nodeState, startGateway, STORE_KINDS, useFakeServers, type Harness } from './testing/gateway-harness.ts';

let vllm: FakeLlmProcess;
let plain: FakeLlmProcess;
let ollama: FakeLlmProcess;
let generic: FakeLlmProcess;
useFakeServers(4, (servers) => ([vllm, plain, ollama, generic] = servers), [
  { kind: 'vllm' },
  { kind: 'sglang' },
  { kind: 'ollama' },
  { kind: 'openai' },
]);

function node(fake: FakeLlmProcess, kind: ServerFakeKind, models: string[], overrides: Partial<NodeState> = {}): NodeState {
  return nodeState(fake.node, models, { kind, surfaces: fakeKindSurfaces(kind), ...overrides });
}

const openai = (h: Harness) => new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'unused', maxRetries: 0 });
const anthropic = (h: Harness) => new Anthropic({ baseURL: h.url, apiKey: 'unused', maxRetries: 0 });
const ollamaClient = (h: Harness) => new Ollama({ host: h.url });

async function routedTo(h: Harness, path: string, body: unknown): Promise<{ status: number; node: string | null; text: string }> {
  const res = await h.post(path, body);
  return { status: res.status, node: res.headers.get('x-routed-node'), text: await res.text() };
}

describe.each(STORE_KINDS)('API surfaces with the %s store', (kind) => {
  test('/v1/completions, FIM suffix included, stream and not, with the openai client', async () => {
    const h = await startGateway(kind);
    await h.putNodes(node(vllm, 'vllm', ['m1']));
    const client = openai(h);
    const answer = await client.completions.create({ model: 'm1', prompt: 'def add(a, b):', suffix: '\n', max_tokens: 8 });
    expect(answer.choices[0].text.length).toBeGreaterThan(0);
    const stream = await client.completions.create({ model: 'auto', prompt: 'Hello', stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(((await vllm.stats()).byPath as Record<string, number>)['/v1/completions']).toBe(2);
  });

  test('/v1/completions goes only to nodes that serve it; a model none of whose nodes does is a 404 naming both', async () => {
    const h = await startGateway(kind);
    await h.putNodes(
      node(vllm, 'vllm', ['m1']),
      node(ollama, 'ollama', ['m1', 'only-ollama'], { surfaces: ['chat_completions', 'ollama'] }),
    );
    for (let i = 0; i < 3; i++) expect((await routedTo(h, '/v1/completions', { model: 'm1', prompt: 'x' })).node).toBe(vllm.node);
    const listed = ((await (await h.get('/v1/nodes')).json()) as { data: { node: string; surfaces: string[] }[] }).data;
    expect(listed.find((n) => n.node === ollama.node)?.surfaces).toEqual(['chat_completions', 'ollama']);
    expect(listed.find((n) => n.node === vllm.node)?.surfaces).toContain('completions');
    const missing = await routedTo(h, '/v1/completions', { model: 'only-ollama', prompt: 'x' });
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.text).error).toMatchObject({ code: 'surface_not_served' });
    expect(JSON.parse(missing.text).error.message).toMatch(/only-ollama.*\/v1\/completions/);
  });

  test('/v1/responses: stream with typed events, and a previous_response_id follow-up reaches the node that made it', async () => {
    const h = await startGateway(kind);
    await h.putNodes(node(vllm, 'vllm', ['m1']), node(plain, 'sglang', ['m1']));
    const client = openai(h);
    const first = await client.responses.create({ model: 'm1', input: 'Hi', store: true });
    const maker = (await vllm.stats()).byPath['/v1/responses'] ? vllm : plain;
    for (let i = 0; i < 4; i++) {
      const follow = await client.responses.create({ model: 'm1', input: 'and then?', previous_response_id: first.id });
      expect(follow.previous_response_id ?? first.id).toBe(first.id);
    }
    const other = maker === vllm ? plain : vllm;
    expect((await other.stats()).byPath['/v1/responses'] ?? 0).toBeLessThanOrEqual(0);
    const stream = await client.responses.create({ model: 'm1', input: 'Stream it', stream: true });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');
    const fetched = await client.responses.retrieve(first.id);
    expect(fetched.id).toBe(first.id);
    const unknown = await routedTo(h, '/v1/responses', { model: 'm1', input: 'x', previous_response_id: 'resp_never' });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text).error.code).toBe('response_not_found');
  });

  test('/v1/messages with the Anthropic SDK: native node and translated node, stream, tools, errors in Anthropic format', async () => {
    const h = await startGateway(kind);
    const client = anthropic(h);
    for (const target of [node(vllm, 'vllm', ['claude-local']), node(plain, 'sglang', ['claude-local'])]) {
      await h.putNodes(target);
      for (const other of [vllm, plain]) if (other.node !== target.node) await h.store.markNodeUnhealthy(other.node, 'test', Date.now());
      await h.gateway.refreshFleet();
      const message = await client.messages.create({ model: 'claude-local', max_tokens: 32, messages: [{ role: 'user', content: 'Hi' }] });
      expect(message.type).toBe('message');
      expect(message.content[0].type).toBe('text');
      const stream = client.messages.stream({ model: 'claude-local', max_tokens: 32, messages: [{ role: 'user', content: 'Hi' }] });
      const final = await stream.finalMessage();
      expect(final.stop_reason).toBeTruthy();
      const withTool = await client.messages.create({
        model: 'claude-local',
        max_tokens: 64,
        tools: [
          { name: 'get_weather', description: 'weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } },
        ],
        messages: [{ role: 'user', content: 'Weather in Paris?' }],
      });
      expect(withTool.content.some((block) => block.type === 'tool_use')).toBe(true);
    }
    expect(((await vllm.stats()).byPath as Record<string, number>)['/v1/messages']).toBeGreaterThan(0);
    expect(((await plain.stats()).byPath as Record<string, number>)['/v1/chat/completions']).toBeGreaterThan(0);
    const error = await client.messages
      .create({ model: 'no-such-model', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.NotFoundError);
    const bad = await h.post('/v1/messages', { model: 'claude-local', messages: [] });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    const count = await client.messages.countTokens({ model: 'claude-local', messages: [{ role: 'user', content: 'Hello there' }] });
    expect(count.input_tokens).toBeGreaterThan(0);
  });

  test('the Ollama API with the ollama client: native Ollama node and translated nodes, NDJSON streams', async () => {
    const h = await startGateway(kind);
    await h.putNodes(node(ollama, 'ollama', ['llama3:8b']), node(plain, 'sglang', ['qwen2']));
    const client = ollamaClient(h);
    const tags = await client.list();
    expect(tags.models.map((m) => m.name).sort()).toEqual(['llama3:8b', 'qwen2']);
    for (const model of ['llama3:8b', 'qwen2']) {
      const chat = await client.chat({ model, messages: [{ role: 'user', content: 'Hi' }], stream: false });
      expect(chat.message.content.length).toBeGreaterThan(0);
      let streamed = '';
      for await (const part of await client.chat({ model, messages: [{ role: 'user', content: 'Hi' }], stream: true }))
        streamed += part.message.content;
      expect(streamed.length).toBeGreaterThan(0);
      const generated = await client.generate({ model, prompt: 'Once', stream: false });
      expect(generated.response?.length).toBeGreaterThan(0);
      const embedded = await client.embed({ model, input: ['a', 'b'] });
      expect(embedded.embeddings).toHaveLength(2);
    }
    expect((await ollama.stats()).byPath['/api/chat']).toBe(2);
    expect((await plain.stats()).byPath['/v1/chat/completions']).toBeGreaterThanOrEqual(2);
    expect((await client.ps()).models).toBeInstanceOf(Array);
    expect((await client.version()).version).toMatch(/^\d+\.\d+/);
    const missing = await h.post('/api/chat', { model: 'nope', messages: [] });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: expect.stringContaining('nope') });
  });

  test('failover before the first byte and the queue hold on completions, messages and /api/chat', async () => {
    const h = await startGateway(kind, { QUEUE_TIMEOUT_MS: '3000' });
    await h.putNodes(node(vllm, 'vllm', ['m1'], { maxconn: 1 }), node(ollama, 'ollama', ['m1'], { maxconn: 1 }));
    await vllm.configure({ failMode: '500' });
    expect((await routedTo(h, '/v1/completions', { model: 'm1', prompt: 'x' })).node).toBe(ollama.node);
    expect((await routedTo(h, '/v1/messages', { model: 'm1', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] })).node).toBe(
      ollama.node,
    );
    expect((await routedTo(h, '/api/chat', { model: 'm1', messages: [{ role: 'user', content: 'x' }], stream: false })).node).toBe(
      ollama.node,
    );
    await vllm.configure({ failMode: null });
    // Both nodes capped at 1: four slow requests at once queue and are all answered.
    const slow = (path: string, body: object) => routedTo(h, path, { ...body, model: 'fault-slow-300' });
    await h.putNodes(node(vllm, 'vllm', ['fault-slow-300'], { maxconn: 1 }), node(ollama, 'ollama', ['fault-slow-300'], { maxconn: 1 }));
    const results = await Promise.all([
      slow('/v1/completions', { prompt: 'x' }),
      slow('/v1/messages', { max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
      slow('/api/chat', { messages: [{ role: 'user', content: 'x' }], stream: false }),
      slow('/v1/completions', { prompt: 'y' }),
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(Math.max((await vllm.stats()).peakInflight, (await ollama.stats()).peakInflight)).toBe(1);
  });

  test('rerank, score, images, audio transcription (multipart) and speech (binary) pass through', async () => {
    const h = await startGateway(kind);
    await h.putNodes(node(vllm, 'vllm', ['m1']), node(plain, 'sglang', ['m1']));
    for (const path of ['/v1/rerank', '/rerank', '/v2/rerank']) {
      const res = await routedTo(h, path, { model: 'm1', query: 'q', documents: ['a', 'b'] });
      expect(res.status, path).toBe(200);
    }
    expect((await routedTo(h, '/v2/rerank', { model: 'm1', query: 'q', documents: ['a'] })).node).toBe(vllm.node);
    expect((await routedTo(h, '/v1/score', { model: 'm1', text_1: 'a', text_2: 'b' })).status).toBe(200);
    await h.putNodes(node(generic, 'openai', ['tts']));
    const client = openai(h);
    const transcript = await client.audio.transcriptions.create({ model: 'm1', file: new File([Buffer.from('RIFFfake')], 'a.wav') });
    expect(typeof transcript.text).toBe('string');
    const speech = await client.audio.speech.create({ model: 'tts', input: 'Hello', voice: 'alloy' });
    expect((await speech.arrayBuffer()).byteLength).toBeGreaterThan(0);
    const image = await client.images.generate({ model: 'tts', prompt: 'a cat' });
    expect(image.data?.length).toBeGreaterThan(0);
  });
});

describe('the Responses API across replicas', () => {
  test('a response made through one replica is followed up through another, on the node that made it', async () => {
    const prefix = `surfaces-${Date.now()}-${Math.random().toString(36).slice(2)}:`;
    const one = await startGateway('redis', { REDIS_KEY_PREFIX: prefix });
    const two = await startGateway('redis', { REDIS_KEY_PREFIX: prefix });
    await one.putNodes(node(vllm, 'vllm', ['m1']), node(plain, 'sglang', ['m1']));
    await two.gateway.refreshFleet();
    const first = await openai(one).responses.create({ model: 'm1', input: 'Hi', store: true });
    const before = { vllm: (await vllm.stats()).byPath['/v1/responses'] ?? 0, plain: (await plain.stats()).byPath['/v1/responses'] ?? 0 };
    const maker = before.vllm > 0 ? vllm : plain;
    for (let i = 0; i < 3; i++) {
      const res = await two.post('/v1/responses', { model: 'm1', input: 'more', previous_response_id: first.id });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-routed-node')).toBe(maker.node);
      await res.arrayBuffer();
    }
    expect((await openai(two).responses.retrieve(first.id)).id).toBe(first.id);
  });
});
