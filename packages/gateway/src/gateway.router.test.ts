/**
 * The router serves the endpoint table on one road: every spelling of a route (exact, with a
 * query string, a trailing slash, another case) answers alike — the same status, envelope and
 * headers, for answers and for errors; auth and the gateway mark hold on every one.
 */
import { describe, expect, test } from 'vitest';
import type { FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, nodeState, startGateway, STORE_KINDS, useFakeServers, type Harness } from './testing/gateway-harness.ts';

let a: FakeLlmProcess;
useFakeServers(1, (servers) => ([a] = servers));

/** The exact path, and spellings the router finds by its second lookup. */
const ROADS = ['/v1/chat/completions', '/v1/chat/completions?trace=1', '/v1/chat/completions/', '/V1/Chat/Completions'];
const SHARED_HEADERS = ['x-ai-lb-gateway', 'x-request-id', 'x-attempts', 'content-type'];

async function answerOf(h: Harness, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await h.post(path, body, { headers });
  const head = Object.fromEntries(SHARED_HEADERS.map((name) => [name, res.headers.get(name)]));
  return {
    status: res.status,
    head,
    selected: res.headers.get('x-selected-model'),
    routed: res.headers.get('x-routed-node'),
    body: await res.json(),
  };
}

describe.each(STORE_KINDS)('the router with the %s store', (kind) => {
  test('an answer carries the same headers on every road', async () => {
    const h = await startGateway(kind);
    await h.putNodes(nodeState(a.node, ['m1']));
    for (const path of ROADS) {
      const answer = await answerOf(h, path, chatBody('m1'), { 'x-request-id': 'req-1' });
      expect(answer.status, path).toBe(200);
      expect(answer.head, path).toEqual({
        'x-ai-lb-gateway': '1',
        'x-request-id': 'req-1',
        'x-attempts': '1',
        'content-type': expect.stringContaining('application/json'),
      });
      expect(answer.selected, path).toBe('m1');
      expect(answer.routed, path).toBe(a.node);
      expect((answer.body as { object?: string }).object, path).toBe('chat.completion');
    }
  });

  test('errors (400, 404) carry the envelope and the request headers on every road', async () => {
    const h = await startGateway(kind);
    await h.putNodes(nodeState(a.node, ['m1']));
    for (const path of ROADS) {
      const invalid = await answerOf(h, path, '{"model":', { 'x-request-id': 'req-2' });
      expect(invalid.status, path).toBe(400);
      expect(invalid.head, path).toMatchObject({ 'x-ai-lb-gateway': '1', 'x-request-id': 'req-2', 'x-attempts': '0' });
      expect((invalid.body as { error: { code: string } }).error.code, path).toBe('invalid_json');
      const unknown = await answerOf(h, path, chatBody('no-such-model'));
      expect(unknown.status, path).toBe(404);
      expect(unknown.head['x-ai-lb-gateway'], path).toBe('1');
      expect(unknown.head['x-request-id'], path).toMatch(/\S/);
    }
  });

  test('GATEWAY_API_KEYS holds on every road, as a bearer or as x-api-key', async () => {
    const h = await startGateway(kind, { GATEWAY_API_KEYS: 'k1-0123456789abcdef' });
    await h.putNodes(nodeState(a.node, ['m1']));
    for (const path of [ROADS[0], '/v1/embeddings']) {
      const refused = await answerOf(h, path, chatBody('m1'));
      expect(refused.status, path).toBe(401);
      expect(refused.head['x-ai-lb-gateway'], path).toBe('1');
      expect((refused.body as { error: { code: string } }).error.code, path).toBe('invalid_api_key');
    }
    for (const path of ROADS) {
      const allowed = await answerOf(h, path, chatBody('m1'), { authorization: 'Bearer k1-0123456789abcdef' });
      expect(allowed.status, path).toBe(200);
    }
    expect((await answerOf(h, ROADS[0], chatBody('m1'), { 'x-api-key': 'k1-0123456789abcdef' })).status).toBe(200);
    expect((await answerOf(h, ROADS[0], chatBody('m1'), { 'x-api-key': 'k2' })).status).toBe(401);
  });

  test('a routing parameter spelled otherwise is refused, not ignored; other parameters pass', async () => {
    const h = await startGateway(kind);
    await h.putNodes(nodeState(a.node, ['m1']));
    for (const query of ['?NODE=x', '?node[]=x', `?node[0]=${a.node}`, '?Require_All=true']) {
      const res = await answerOf(h, `/v1/chat/completions${query}`, chatBody('m1'));
      expect(res.status, query).toBe(400);
      expect((res.body as { error: { param: string } }).error.param, query).toMatch(/^(node|require_all)$/);
    }
    const ok = await answerOf(h, `/v1/chat/completions?api-version=2024-06-01&node=${a.node}`, chatBody('m1'));
    expect(ok.status).toBe(200);
    expect(ok.routed).toBe(a.node);
  });

  test('GET routes answer HEAD without a body; a :param is decoded', async () => {
    const h = await startGateway(kind);
    await h.putNodes(nodeState(a.node, ['org/m 1']));
    const head = await fetch(`${h.url}/v1/models`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('x-ai-lb-gateway')).toBe('1');
    expect(await head.text()).toBe('');
    const model = await h.get(`/v1/models/${encodeURIComponent('org/m 1')}`);
    expect(model.status).toBe(200);
    expect(((await model.json()) as { id: string }).id).toBe('org/m 1');
    const bad = await h.get('/v1/models/%E0%A4%A');
    expect(bad.status).toBe(404);
  });
});

describe('CORS for browser clients', () => {
  test('unset: no CORS headers, OPTIONS is a 405', async () => {
    const h = await startGateway('memory');
    const preflight = await fetch(`${h.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'https://app.example' } });
    expect(preflight.status).toBe(405);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('allowed origins: preflight without the key, answers readable with the routing headers exposed; others get nothing', async () => {
    const h = await startGateway('memory', { CORS_ORIGINS: 'https://app.example', GATEWAY_API_KEYS: 'k1-0123456789abcdef' });
    await h.putNodes(nodeState(a.node, ['m1']));
    const preflight = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization, content-type');
    const answer = await h.post('/v1/chat/completions', chatBody('m1'), {
      headers: { origin: 'https://app.example', authorization: 'Bearer k1-0123456789abcdef' },
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(answer.headers.get('access-control-expose-headers')).toContain('x-routed-node');
    await answer.arrayBuffer();
    const refused = await h.post('/v1/chat/completions', chatBody('m1'), { headers: { origin: 'https://app.example' } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const other = await fetch(`${h.url}/v1/models`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
    expect(other.status).toBe(405);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
