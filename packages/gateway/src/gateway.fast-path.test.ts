/**
 * Issue 6: POST /v1/chat/completions and /v1/embeddings at their exact path skip express's
 * router (app.ts createRequestListener); any other spelling of the same route (a query
 * string, a trailing slash) still goes through express. Both roads must answer alike:
 * the same status, envelope and headers, for answers and for errors.
 */
import { describe, expect, test } from 'vitest';
import type { FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, nodeState, startGateway, STORE_KINDS, useFakeServers, type Harness } from './testing/gateway-harness.ts';

let a: FakeLlmProcess;
useFakeServers(1, (servers) => ([a] = servers));

/** The fast road, and two spellings that go through express. */
const ROADS = ['/v1/chat/completions', '/v1/chat/completions?trace=1', '/v1/chat/completions/'];
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

describe.each(STORE_KINDS)('the inference fast path with the %s store', (kind) => {
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

  test('GATEWAY_API_KEYS holds on the fast road too', async () => {
    const h = await startGateway(kind, { GATEWAY_API_KEYS: 'k1' });
    await h.putNodes(nodeState(a.node, ['m1']));
    for (const path of [ROADS[0], '/v1/embeddings']) {
      const refused = await answerOf(h, path, chatBody('m1'));
      expect(refused.status, path).toBe(401);
      expect(refused.head['x-ai-lb-gateway'], path).toBe('1');
      expect((refused.body as { error: { code: string } }).error.code, path).toBe('invalid_api_key');
    }
    const allowed = await answerOf(h, ROADS[0], chatBody('m1'), { authorization: 'Bearer k1' });
    expect(allowed.status).toBe(200);
  });
});
