/**
 * The fakes speak every surface their real counterparts serve, in the real shapes (checked
 * with the official openai client where it has a method), refuse the rest the way each real
 * server does, and play the failover faults on the new surfaces too. One process per kind.
 */
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startFakeLlmServer, type FakeLlmProcess } from './start-fake-llm-server.ts';
import { KIND_ENDPOINTS, type EndpointKey } from './fake-surfaces.ts';
import type { ServerFakeKind } from './fake-kinds.ts';

const KINDS: ServerFakeKind[] = ['openai', 'vllm', 'llamacpp', 'ollama', 'lmstudio', 'sglang'];
const ALL_ENDPOINTS = [...new Set(Object.values(KIND_ENDPOINTS).flat())] as EndpointKey[];
const fakes = {} as Record<ServerFakeKind, FakeLlmProcess>;

// One at a time: six tsx processes starting at once on a busy two-core machine miss their ready timeout.
beforeAll(async () => {
  for (const kind of KINDS) fakes[kind] = await startFakeLlmServer({ kind, models: ['m'] });
}, 120_000);

afterAll(async () => {
  await Promise.all(Object.values(fakes).map((fake) => fake.stop()));
});

async function call(fake: FakeLlmProcess, key: EndpointKey, body: unknown = {}) {
  const [method, path] = key.split(' ') as [string, string];
  const response = await fetch(`${fake.url}${path.replace('{id}', 'resp_unknown')}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(method === 'GET' ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, text: await response.text(), type: response.headers.get('content-type') ?? '' };
}

describe('refusals: a route the kind does not serve is answered as that server answers it', () => {
  const expected: Record<ServerFakeKind, (path: string, method: string) => { status: number; text: string }> = {
    openai: (path, method) => ({
      status: 404,
      text: JSON.stringify({
        error: { message: `Invalid URL (${method} ${path})`, type: 'invalid_request_error', param: null, code: null },
      }),
    }),
    vllm: () => ({ status: 404, text: '{"detail":"Not Found"}' }),
    sglang: () => ({ status: 404, text: '{"detail":"Not Found"}' }),
    llamacpp: () => ({ status: 404, text: '{"error":{"message":"File Not Found","type":"not_found_error","code":404}}' }),
    ollama: () => ({ status: 404, text: '404 page not found' }),
    lmstudio: (path, method) => ({ status: 200, text: JSON.stringify({ error: `Unexpected endpoint or method. (${method} ${path})` }) }),
  };

  test.each(KINDS)('%s', async (kind) => {
    for (const key of ALL_ENDPOINTS.filter((k) => !KIND_ENDPOINTS[kind].includes(k) && !k.includes('{id}'))) {
      const [method, path] = key.split(' ') as [string, string];
      expect(await call(fakes[kind], key), `${kind} ${key}`).toMatchObject(expected[kind](path, method));
    }
  });

  test('a wrong method on a served path: FastAPI and gin say 405', async () => {
    expect(await call(fakes.vllm, 'DELETE /v1/responses/{id}')).toMatchObject({ status: 405, text: '{"detail":"Method Not Allowed"}' });
    const get = await fetch(`${fakes.ollama.url}/api/chat`);
    expect({ status: get.status, text: await get.text() }).toEqual({ status: 405, text: '405 method not allowed' });
  });

  test.each(KINDS)('%s: every served POST route rejects {} with 400 before any inference', async (kind) => {
    await fakes[kind].reset();
    for (const key of KIND_ENDPOINTS[kind].filter((k) => k.startsWith('POST') && !k.includes('{id}'))) {
      expect((await call(fakes[kind], key)).status, `${kind} ${key}`).toBe(400);
    }
    expect((await fakes[kind].stats()).requests).toBe(0);
  });
});

describe('the Responses API (openai client)', () => {
  const client = (fake: FakeLlmProcess) => new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'k', maxRetries: 0 });

  test('create, follow-up by previous_response_id, retrieve, delete', async () => {
    const openai = client(fakes.openai);
    const first = await openai.responses.create({ model: 'm', input: 'hi' });
    expect(first.output_text).toBe('Hello from fake');
    expect(first.id).toMatch(new RegExp(`^resp_${fakes.openai.pid}_`));
    const second = await openai.responses.create({ model: 'm', input: 'again', previous_response_id: first.id });
    expect(second).toMatchObject({ previous_response_id: first.id, output_text: 'Hello from fake again' });
    expect((await openai.responses.retrieve(first.id)).id).toBe(first.id);
    await openai.responses.delete(first.id);
    await expect(openai.responses.retrieve(first.id)).rejects.toMatchObject({ status: 404 });
  });

  test('streams typed events the client assembles into the final response', async () => {
    const stream = client(fakes.vllm).responses.stream({ model: 'm', input: 'hi' });
    const types: string[] = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    expect(text).toBe('Hello from fake');
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');
    expect((await stream.finalResponse()).output_text).toBe('Hello from fake');
  });

  test('function calls, stream and not', async () => {
    const tools = [
      { type: 'function' as const, name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } }, strict: false },
    ];
    const response = await client(fakes.sglang).responses.create({ model: 'm', input: 'find x', tools });
    expect(response.output[0]).toMatchObject({ type: 'function_call', name: 'lookup', arguments: '{"q":"fake"}' });
    const streamed = await client(fakes.sglang).responses.stream({ model: 'm', input: 'find x', tools }).finalResponse();
    expect(streamed.output[0]).toMatchObject({ type: 'function_call', name: 'lookup', arguments: '{"q":"fake"}' });
  });

  test('a response lives on the node that made it; stateless kinds refuse follow-ups', async () => {
    const made = await client(fakes.vllm).responses.create({ model: 'm', input: 'hi' });
    await expect(client(fakes.sglang).responses.create({ model: 'm', input: 'x', previous_response_id: made.id })).rejects.toMatchObject({
      status: 404,
      code: 'previous_response_not_found',
    });
    await expect(client(fakes.ollama).responses.create({ model: 'm', input: 'x', previous_response_id: made.id })).rejects.toMatchObject({
      status: 400,
    });
    expect((await client(fakes.lmstudio).responses.create({ model: 'm', input: 'x' })).output_text).toBe('Hello from fake');
  });

  test('cancel: background responses only', async () => {
    const openai = client(fakes.vllm);
    const background = await openai.responses.create({ model: 'm', input: 'long', background: true });
    expect(background.status).toBe('in_progress');
    expect((await openai.responses.cancel(background.id)).status).toBe('cancelled');
    const done = await openai.responses.create({ model: 'm', input: 'short' });
    await expect(openai.responses.cancel(done.id)).rejects.toMatchObject({ status: 400 });
  });
});

describe('completions, audio, images, rerank, score', () => {
  test('completions, stream and not (openai client)', async () => {
    const openai = new OpenAI({ baseURL: `${fakes.llamacpp.url}/v1`, apiKey: 'k', maxRetries: 0 });
    expect((await openai.completions.create({ model: 'm', prompt: 'def f(', suffix: '  return 1' })).choices[0]!.text).toBe(
      'Hello from fake',
    );
    let text = '';
    let usage: unknown = null;
    for await (const chunk of await openai.completions.create({
      model: 'm',
      prompt: 'x',
      stream: true,
      stream_options: { include_usage: true },
    })) {
      text += chunk.choices[0]?.text ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe('Hello from fake');
    expect(usage).toMatchObject({ completion_tokens: 3 });
  });

  test('audio: transcription from a multipart upload, speech as streamed bytes (openai client)', async () => {
    const openai = new OpenAI({ baseURL: `${fakes.openai.url}/v1`, apiKey: 'k', maxRetries: 0 });
    const file = await toFile(Buffer.from('RIFF....WAVEfmt '), 'clip.wav', { type: 'audio/wav' });
    expect((await openai.audio.transcriptions.create({ model: 'whisper', file })).text).toBe('Hello from fake');
    expect(await openai.audio.translations.create({ model: 'whisper', file, response_format: 'text' })).toBe('Hello from fake');
    const speech = await openai.audio.speech.create({ model: 'tts', voice: 'alloy', input: 'hi' });
    expect(speech.headers.get('content-type')).toBe('audio/mpeg');
    expect((await speech.arrayBuffer()).byteLength).toBeGreaterThan(8000);
  });

  test('images (openai client, Ollama)', async () => {
    const openai = new OpenAI({ baseURL: `${fakes.ollama.url}/v1`, apiKey: 'k', maxRetries: 0 });
    const image = await openai.images.generate({ model: 'x/z-image-turbo', prompt: 'a robot', n: 2 });
    expect(image.data).toHaveLength(2);
    expect(Buffer.from(image.data![0]!.b64_json!, 'base64').subarray(1, 4).toString()).toBe('PNG');
  });

  test('rerank (v1, /rerank, v2) and score on vLLM', async () => {
    const documents = ['a', 'b', 'c'];
    for (const path of ['/v1/rerank', '/rerank', '/v2/rerank']) {
      const response = await fetch(`${fakes.vllm.url}${path}`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', query: 'q', documents, top_n: 2 }),
      });
      const body = (await response.json()) as { results: Array<{ index: number; relevance_score: number; document: { text: string } }> };
      expect(body.results.map((r) => r.index)).toEqual([0, 1]);
      expect(body.results[0]!.relevance_score).toBeGreaterThan(body.results[1]!.relevance_score);
    }
    const score = await fetch(`${fakes.vllm.url}/v1/score`, {
      method: 'POST',
      body: JSON.stringify({ model: 'm', text_1: 'q', text_2: documents }),
    });
    expect(((await score.json()) as { data: unknown[] }).data).toHaveLength(3);
  });
});

describe('faults on the new surfaces, in each surface’s own format', () => {
  const post = (fake: FakeLlmProcess, path: string, body: object, signal?: AbortSignal) =>
    fetch(`${fake.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  const cases = [
    [
      'completions',
      fakesKind('vllm'),
      '/v1/completions',
      { prompt: 'x' },
      (body: unknown) => expect(body).toMatchObject({ error: { message: 'fake upstream error 500' } }),
    ],
    [
      'messages',
      fakesKind('vllm'),
      '/v1/messages',
      { max_tokens: 5, messages: [] },
      (body: unknown) => expect(body).toEqual({ type: 'error', error: { type: 'api_error', message: 'fake upstream error 500' } }),
    ],
    [
      '/api/chat',
      fakesKind('ollama'),
      '/api/chat',
      { messages: [] },
      (body: unknown) => expect(body).toEqual({ error: 'fake upstream error 500' }),
    ],
  ] as const;

  test.each(cases)('%s: fault-500, fault-reset, fault-hang, failMode', async (_name, kind, path, body, check) => {
    const fake = fakes[kind()];
    const failed = await post(fake, path, { ...body, model: 'fault-500' });
    expect(failed.status).toBe(500);
    check(await failed.json());
    await expect(post(fake, path, { ...body, model: 'fault-reset' })).rejects.toThrow();
    await expect(post(fake, path, { ...body, model: 'fault-hang' }, AbortSignal.timeout(300))).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    await fake.configure({ failMode: '503' });
    try {
      expect((await post(fake, path, { ...body, model: 'm' })).status).toBe(503);
    } finally {
      await fake.configure({ failMode: null });
    }
    expect((await post(fake, path, { ...body, model: 'm' })).status).toBe(200);
  });

  test('fault-cut-stream: two events of the surface’s own stream, then the connection dies', async () => {
    const response = await post(fakes.ollama, '/api/chat', { model: 'fault-cut-stream', messages: [] });
    expect(response.headers.get('content-type')).toBe('application/x-ndjson');
    const reader = response.body!.getReader();
    let received = '';
    await expect(
      (async () => {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          received += Buffer.from(value).toString();
        }
      })(),
    ).rejects.toThrow();
    expect(received.trim().split('\n')).toHaveLength(2);
  });
});

function fakesKind(kind: ServerFakeKind) {
  return () => kind;
}
