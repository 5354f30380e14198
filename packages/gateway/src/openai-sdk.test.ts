import OpenAI, { APIError } from 'openai';
import { describe, expect, test } from 'vitest';
import type { FakeLlmProcess } from '@ai-lb/testkit';
import { nodeState, startGateway, STORE_KINDS, useFakeServers } from './testing/gateway-harness.ts';

let a: FakeLlmProcess;
let b: FakeLlmProcess;

useFakeServers(2, (servers) => ([a, b] = servers));

/** The official SDK as users point it at the gateway; no SDK retries so statuses are ours. */
function client(url: string): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: 'not-needed', maxRetries: 0 });
}

describe.each(STORE_KINDS)('the official openai SDK against the gateway (%s store)', (kind) => {
  test('models.list, chat (plain and streaming) with model "auto", embeddings', async () => {
    const h = await startGateway(kind, { MAX_RETRIES: '1', REQUEST_TIMEOUT_SECS: '2' });
    await h.putNodes(nodeState(a.node, ['chat-model', 'embed-model']), nodeState(b.node, ['chat-model']));
    const openai = client(h.url);

    const models = [];
    for await (const model of openai.models.list()) models.push(model.id);
    expect(models.sort()).toEqual(['chat-model', 'embed-model']);

    const { data: completion, response } = await openai.chat.completions
      .create({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(completion.choices[0].message.content).toBe('Hello from fake');
    expect(response.headers.get('x-selected-model')).toBe('chat-model');

    const stream = await openai.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'hi' }], stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe('Hello from fake');
    expect(finish).toBe('stop');

    const embedding = await openai.embeddings.create({ model: 'embed-model', input: 'hello' });
    expect(embedding.data[0].embedding).toHaveLength(3);
  });

  test('a 502 surfaces as an APIError carrying the gateway message', async () => {
    const h = await startGateway(kind, { MAX_RETRIES: '1', REQUEST_TIMEOUT_SECS: '2' });
    await h.putNodes(nodeState(a.node, ['fault-500']), nodeState(b.node, ['fault-500']));
    const error = await client(h.url)
      .chat.completions.create({ model: 'fault-500', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    const apiError = error as APIError;
    expect(apiError.status).toBe(502);
    expect(apiError.type).toBe('server_error');
    expect(apiError.code).toBe('upstream_failed');
    expect(apiError.message).toContain("model 'fault-500': 2 attempts");
  });

  test('a mid-stream failure surfaces in the SDK as an error, never as a clean end', async () => {
    const h = await startGateway(kind, { REQUEST_TIMEOUT_SECS: '2' });
    await h.putNodes(nodeState(a.node, ['fault-cut-stream']));
    const stream = await client(h.url).chat.completions.create({
      model: 'fault-cut-stream',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    let text = '';
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    expect(text).toBe('Hello partial');
  });
});
