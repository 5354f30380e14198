import { request as httpRequest } from 'node:http';
import { describe, expect, test } from 'vitest';
import { startFakeLlmServer, type FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, nodeState, startGateway, STORE_KINDS, useFakeServers } from './testing/gateway-harness.ts';

let a: FakeLlmProcess;
let b: FakeLlmProcess;

useFakeServers(2, (servers) => ([a, b] = servers));

interface Envelope {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function envelope(res: Response): Promise<Envelope['error']> {
  expect(res.headers.get('content-type')).toContain('application/json');
  expect(res.headers.get('x-ai-lb-gateway')).toBe('1');
  const body = (await res.json()) as Envelope;
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  return body.error;
}

/** Declares a huge Content-Length and sends only a little: the 413 must not wait for the rest. */
function sendDeclaredLength(url: string, declared: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(declared) },
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.write('{"model":"m1",');
  });
}

describe.each(STORE_KINDS)('HTTP contract with the %s store', (kind) => {
  test('malformed and incomplete bodies are 400s naming the field', async () => {
    const h = await startGateway(kind);
    await h.putNodes(nodeState(a.node, ['m1']));
    const cases: Array<[string | object, string | null, string]> = [
      ['{"model": "m1", "messages": [', null, '/v1/chat/completions'],
      ['[1,2]', null, '/v1/chat/completions'],
      ['', null, '/v1/chat/completions'],
      [{ model: 'm1' }, 'messages', '/v1/chat/completions'],
      [{ model: 'm1', messages: 'hi' }, 'messages', '/v1/chat/completions'],
      [{ model: 'm1', messages: [1] }, 'messages', '/v1/chat/completions'],
      [{ model: 5, messages: [{ role: 'user', content: 'x' }] }, 'model', '/v1/chat/completions'],
      [{ model: 'm1', messages: [{ role: 'user', content: 'x' }], stream: 'yes' }, 'stream', '/v1/chat/completions'],
      [{ messages: [{ role: 'user', content: 'x' }] }, 'model', '/v1/chat/completions'],
      [{ model: 'm1' }, 'input', '/v1/embeddings'],
      [{ input: 'x' }, 'model', '/v1/embeddings'],
    ];
    for (const [body, param, path] of cases) {
      const res = await h.post(path, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const error = await envelope(res);
      expect(error.type).toBe('invalid_request_error');
      expect(error.param, JSON.stringify(body)).toBe(param);
      expect(res.headers.get('x-attempts')).toBe('0');
    }
    expect((await a.stats()).requests).toBe(0);
  });

  test('413 over MAX_BODY_BYTES: from Content-Length at once, and while reading a chunked body', async () => {
    const h = await startGateway(kind, { MAX_BODY_BYTES: '1000' });
    await h.putNodes(nodeState(a.node, ['m1']));
    const declared = await sendDeclaredLength(h.url, 50_000_000);
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body).error.code).toBe('body_too_large');

    const big = JSON.stringify(chatBody('m1', { padding: 'x'.repeat(5000) }));
    const chunked = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(big));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect((await envelope(chunked)).code).toBe('body_too_large');
    // Just under the limit is fine.
    const ok = await h.post('/v1/chat/completions', chatBody('m1', { padding: 'x'.repeat(800) }));
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
  });

  test('unknown routes are 404 envelopes; wrong methods are 405 with Allow', async () => {
    const h = await startGateway(kind);
    const missing = await h.get('/v1/nope');
    expect(missing.status).toBe(404);
    expect((await envelope(missing)).code).toBe('route_not_found');
    const wrong = await h.get('/v1/chat/completions');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect((await envelope(wrong)).code).toBe('method_not_allowed');
    const post = await h.post('/v1/models', {});
    expect(post.status).toBe(405);
    await post.arrayBuffer();
  });

  test('a model served by no healthy node is a 503, not a 404', async () => {
    const h = await startGateway(kind);
    await h.putNodes(nodeState(a.node, ['m1'], { healthy: false }));
    const res = await h.post('/v1/chat/completions', chatBody('m1'));
    expect(res.status).toBe(503);
    expect((await envelope(res)).code).toBe('no_eligible_node');
  });

  test('GATEWAY_API_KEYS: /v1 needs a valid bearer key, /health and /metrics stay open', async () => {
    const h = await startGateway(kind, { GATEWAY_API_KEYS: 'key-one-0123456789,key-two-0123456789', MIN_HEALTHY_NODES: '0' });
    await h.putNodes(nodeState(a.node, ['m1']));
    const none = await h.post('/v1/chat/completions', chatBody('m1'));
    expect(none.status).toBe(401);
    expect((await envelope(none)).code).toBe('invalid_api_key');
    const wrong = await h.post('/v1/chat/completions', chatBody('m1'), { headers: { authorization: 'Bearer key-three' } });
    expect(wrong.status).toBe(401);
    const wrongError = await envelope(wrong);
    expect(wrongError.message).not.toContain('key-three');
    expect((await h.get('/v1/models')).status).toBe(401);
    for (const key of ['key-one-0123456789', 'key-two-0123456789']) {
      const ok = await h.post('/v1/chat/completions', chatBody('m1'), { headers: { authorization: `Bearer ${key}` } });
      expect(ok.status).toBe(200);
      await ok.arrayBuffer();
    }
    expect((await h.get('/health')).status).toBe(200);
    const metrics = await h.get('/metrics');
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).not.toContain('key-');
    // The gateway key is never forwarded to a node.
    expect((await a.stats()).authorizations).toEqual([]);
  });

  test('NODE_API_KEYS: each node gets its own key; the client key never reaches a node', async () => {
    const h = await startGateway(kind, { NODE_API_KEYS: `${a.node}=node-secret-a`, ROUTING_STRATEGY: 'ROUND_ROBIN' });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    for (let i = 0; i < 2; i++) {
      const res = await h.post('/v1/chat/completions', chatBody('m1'), { headers: { authorization: 'Bearer client-token' } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    expect((await a.stats()).authorizations).toEqual(['Bearer node-secret-a']);
    // The client's own Authorization never reaches a node, keyed or not.
    expect((await b.stats()).authorizations).toEqual([]);
    expect(await (await h.get('/metrics')).text()).not.toContain('node-secret');
    const nodes = await (await h.get('/v1/nodes')).text();
    expect(nodes).not.toContain('node-secret');
  });

  test('NODE_API_KEYS for an IPv6 node written in any spelling reaches it', async () => {
    const v6 = await startFakeLlmServer({ host: '::1', models: ['m1'] });
    try {
      const h = await startGateway(kind, { NODE_API_KEYS: `[0:0::1]:${v6.port}=ipv6-node-secret` });
      await h.putNodes(nodeState(v6.node, ['m1']));
      const res = await h.post('/v1/chat/completions', chatBody('m1'), { headers: { authorization: 'Bearer client-token' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-routed-node')).toBe(`[::1]:${v6.port}`);
      await res.arrayBuffer();
      expect((await v6.stats()).authorizations).toEqual(['Bearer ipv6-node-secret']);
    } finally {
      await v6.stop();
    }
  });

  test('NODE_API_KEYS with GATEWAY_API_KEYS: unkeyed nodes get no Authorization at all', async () => {
    const h = await startGateway(kind, {
      NODE_API_KEYS: `${a.node}=node-secret-a`,
      GATEWAY_API_KEYS: 'gw-key-0123456789ab',
      ROUTING_STRATEGY: 'ROUND_ROBIN',
    });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    for (let i = 0; i < 2; i++) {
      const res = await h.post('/v1/chat/completions', chatBody('m1'), { headers: { authorization: 'Bearer gw-key-0123456789ab' } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    expect((await a.stats()).authorizations).toEqual(['Bearer node-secret-a']);
    expect((await b.stats()).authorizations).toEqual([]);
  });
});
