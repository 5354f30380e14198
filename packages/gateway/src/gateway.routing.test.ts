import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { startFakeLlmServer, waitUntil, type FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, nodeState, startGateway, STORE_KINDS, type Harness } from './testing/gateway-harness.ts';

let a: FakeLlmProcess;
let b: FakeLlmProcess;
/** a and b sorted by node id: round-robin order. */
let first: FakeLlmProcess;
let second: FakeLlmProcess;

beforeAll(async () => {
  [a, b] = await Promise.all([startFakeLlmServer(), startFakeLlmServer()]);
  [first, second] = [a, b].sort((x, y) => (x.node < y.node ? -1 : 1));
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});
beforeEach(async () => {
  await Promise.all([a.reset(), b.reset()]);
});

async function routedNodes(h: Harness, count: number, body: object, path = '/v1/chat/completions'): Promise<string[]> {
  const nodes: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await h.post(path, body);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    nodes.push(res.headers.get('x-routed-node')!);
  }
  return nodes;
}

describe.each(STORE_KINDS)('routing with the %s store', (kind) => {
  test('chat non-stream: upstream JSON and the routing headers', async () => {
    const h = await startGateway(kind);
    await h.putNodes(nodeState(a.node, ['m1']));
    const res = await h.post('/v1/chat/completions', chatBody('m1'), { headers: { 'x-request-id': 'req-42' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.headers.get('x-selected-model')).toBe('m1');
    expect(res.headers.get('x-routed-node')).toBe(a.node);
    expect(res.headers.get('x-request-id')).toBe('req-42');
    expect(res.headers.get('x-attempts')).toBe('1');
    expect(res.headers.get('x-ai-lb-gateway')).toBe('1');
    const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
    expect(body.choices[0].message.content).toBe('Hello from fake');
    expect((await a.stats()).requestIds).toEqual(['req-42']);
  });

  test('an insane x-request-id is replaced, and the replacement is what goes upstream', async () => {
    const h = await startGateway(kind);
    await h.putNodes(nodeState(a.node, ['m1']));
    for (const bad of ['has spaces in it', 'x'.repeat(129)]) {
      const res = await h.post('/v1/chat/completions', chatBody('m1'), { headers: { 'x-request-id': bad } });
      expect(res.status).toBe(200);
      const id = res.headers.get('x-request-id')!;
      expect(id).not.toBe(bad);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      await res.arrayBuffer();
      expect((await a.stats()).requestIds.at(-1)).toBe(id);
    }
  });

  test('a sentinel resolves, only `model` is rewritten, unknown fields pass through', async () => {
    const h = await startGateway(kind, { PREFERRED_MODELS: 'nope;fault-echo' });
    await h.putNodes(nodeState(a.node, ['m1', 'fault-echo']));
    const res = await h.post('/v1/chat/completions', chatBody('AUTO', { vendor_knob: { deep: [1, 'x'] }, temperature: 0.25 }));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-selected-model')).toBe('fault-echo');
    const { echo } = (await res.json()) as { echo: { body: Record<string, unknown> } };
    expect(echo.body).toEqual({
      model: 'fault-echo',
      messages: [{ role: 'user', content: 'hi' }],
      vendor_knob: { deep: [1, 'x'] },
      temperature: 0.25,
    });
  });

  test('a missing model uses LM_MODEL; an unknown model is a 404 at once', async () => {
    const h = await startGateway(kind, { LM_MODEL: 'm2' });
    await h.putNodes(nodeState(a.node, ['m1', 'm2']));
    const res = await h.post('/v1/chat/completions', chatBody(undefined));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-selected-model')).toBe('m2');
    const started = Date.now();
    const missing = await h.post('/v1/chat/completions', chatBody('no-such-model'));
    expect(missing.status).toBe(404);
    expect(Date.now() - started).toBeLessThan(500);
    expect(((await missing.json()) as { error: { param: string } }).error.param).toBe('model');
    expect((await a.stats()).requests).toBe(1);
  });

  test('embeddings are resolved and routed like chat', async () => {
    const h = await startGateway(kind);
    await h.putNodes(nodeState(a.node, ['embed-1']));
    const res = await h.post('/v1/embeddings', { model: 'embed-1', input: 'hello' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-routed-node')).toBe(a.node);
    expect(res.headers.get('x-attempts')).toBe('1');
    expect(((await res.json()) as { data: Array<{ embedding: number[] }> }).data[0].embedding).toHaveLength(3);
  });

  test('/v1/models is the de-duplicated union over healthy nodes', async () => {
    const h = await startGateway(kind);
    await h.putNodes(
      nodeState(a.node, ['m1', 'm2']),
      nodeState(b.node, ['m2', 'm3']),
      nodeState('127.0.0.1:1', ['hidden'], { healthy: false }),
    );
    const res = await h.get('/v1/models');
    const body = (await res.json()) as { object: string; data: Array<{ id: string; object: string; owned_by: string }> };
    expect(body.object).toBe('list');
    expect(body.data.map((m) => m.id).sort()).toEqual(['m1', 'm2', 'm3']);
    expect(body.data.every((m) => m.object === 'model' && typeof m.owned_by === 'string')).toBe(true);
  });

  test('/v1/nodes and /v1/eligible_nodes', async () => {
    const h = await startGateway(kind);
    await h.putNodes(nodeState(a.node, ['m1'], { maxconn: 4 }), nodeState(b.node, ['m1', 'm2']));
    const nodes = (await (await h.get('/v1/nodes')).json()) as { data: Array<Record<string, unknown>> };
    expect(nodes.data).toHaveLength(2);
    expect(nodes.data.find((n) => n.node === a.node)).toMatchObject({
      healthy: true,
      models: ['m1'],
      inflight: 0,
      maxconn: 4,
      failures: 0,
      circuit: 'closed',
      latency_ms: { probe: 5 },
    });
    const eligible = (await (await h.get('/v1/eligible_nodes?model=m1')).json()) as { model: string; data: string[] };
    expect(eligible).toMatchObject({ model: 'm1', data: [a.node, b.node].sort() });
    expect(((await (await h.get('/v1/eligible_nodes?model=m2')).json()) as { data: string[] }).data).toEqual([b.node]);
    expect((await h.get('/v1/eligible_nodes')).status).toBe(400);
    expect((await h.get('/v1/eligible_nodes?model=zzz')).status).toBe(404);
  });

  test('ROUND_ROBIN spreads evenly and is not reset by unrelated fleet changes', async () => {
    const h = await startGateway(kind, { ROUTING_STRATEGY: 'ROUND_ROBIN' });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    const before = await routedNodes(h, 3, chatBody('m1'));
    // Another model's node joins: m1's rotation goes on where it was.
    await h.putNodes(nodeState('127.0.0.1:2', ['other']));
    const after = await routedNodes(h, 3, chatBody('m1'));
    expect([...before, ...after]).toEqual([first.node, second.node, first.node, second.node, first.node, second.node]);
  });

  test('RANDOM reaches every node', async () => {
    const h = await startGateway(kind, { ROUTING_STRATEGY: 'RANDOM' });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    const nodes = await routedNodes(h, 16, chatBody('m1'));
    expect(new Set(nodes)).toEqual(new Set([a.node, b.node]));
  });

  test('LEAST_LOADED sends the next request to the idle node and never past a cap', async () => {
    const h = await startGateway(kind, { ROUTING_STRATEGY: 'LEAST_LOADED' });
    await h.putNodes(nodeState(a.node, ['fault-slow-600'], { maxconn: 1 }), nodeState(b.node, ['fault-slow-600'], { maxconn: 1 }));
    const slow = h.post('/v1/chat/completions', chatBody('fault-slow-600'));
    // The second request is sent once the first holds its slot.
    const inflight = async () => Object.values(await h.store.getInflight([a.node, b.node])).reduce((x, y) => x + y, 0);
    await waitUntil(async () => (await inflight()) === 1, { what: 'the first request holding a slot' });
    const next = h.post('/v1/chat/completions', chatBody('fault-slow-600'));
    const [r1, r2] = await Promise.all([slow, next]);
    expect(r1.status).toBe(200);
    expect(r2.status).toBe(200);
    expect(r1.headers.get('x-routed-node')).not.toBe(r2.headers.get('x-routed-node'));
    expect((await a.stats()).peakInflight).toBe(1);
    expect((await b.stats()).peakInflight).toBe(1);
  });

  test('P2C prefers the node with less load and latency', async () => {
    const h = await startGateway(kind, { ROUTING_STRATEGY: 'P2C' });
    await h.putNodes(nodeState(a.node, ['m1'], { latencyMs: 5 }), nodeState(b.node, ['m1'], { latencyMs: 3000 }));
    const nodes = await routedNodes(h, 6, chatBody('m1'));
    expect(nodes.every((n) => n === a.node)).toBe(true);
  });

  test('?node= forces a known node serving the model; anything else is a 404 and nothing is dialed', async () => {
    const h = await startGateway(kind, { ROUTING_STRATEGY: 'ROUND_ROBIN' });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1', 'm2']));
    for (let i = 0; i < 3; i++) {
      const res = await h.post(`/v1/chat/completions?node=${b.node}`, chatBody('m1'));
      expect(res.headers.get('x-routed-node')).toBe(b.node);
      await res.arrayBuffer();
    }
    for (const query of ['?node=127.0.0.1:9', '?node=example.com:80', `?node=${a.node}/../x`]) {
      const res = await h.post(`/v1/chat/completions${query}`, chatBody('m1'));
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('node_not_eligible');
    }
    const wrongModel = await h.post(`/v1/chat/completions?node=${a.node}`, chatBody('m2'));
    expect(wrongModel.status).toBe(404);
    await wrongModel.arrayBuffer();
    expect((await a.stats()).requests).toBe(0);
    expect((await b.stats()).requests).toBe(3);
  });

  test('sticky sessions keep a session on its node', async () => {
    const h = await startGateway(kind, { ROUTING_STRATEGY: 'ROUND_ROBIN', STICKY_SESSIONS: 'true' });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    const nodes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await h.post('/v1/chat/completions', chatBody('m1'), { headers: { 'x-session-id': 'session-1' } });
      expect(res.status).toBe(200);
      nodes.push(res.headers.get('x-routed-node')!);
      await res.arrayBuffer();
    }
    // Round robin alone would alternate between a and b.
    expect(new Set(nodes).size).toBe(1);
  });

  test('upstream pools are per node, kept alive, and closed when the node leaves the fleet', async () => {
    const h = await startGateway(kind);
    await h.putNodes(nodeState(b.node, ['m1']));
    await h.store.putNode(nodeState(a.node, ['m1']), 400);
    await h.gateway.refreshFleet();
    for (const node of [a.node, b.node]) {
      const res = await h.post(`/v1/chat/completions?node=${node}`, chatBody('m1'));
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    expect(h.gateway.services.pools.size).toBe(2);
    // a's record expires (no refresh from a monitor): its pool goes, b's stays.
    await waitUntil(async () => !(await h.store.listNodes()).some((n) => n.node === a.node), { what: "a's record expired" });
    await h.gateway.refreshFleet();
    expect(h.gateway.services.pools.size).toBe(1);
    const gone = await h.post(`/v1/chat/completions?node=${a.node}`, chatBody('m1'));
    expect(gone.status).toBe(404);
    await gone.arrayBuffer();
  });

  test('/health follows MIN_HEALTHY_NODES; /metrics speaks Prometheus', async () => {
    const h = await startGateway(kind, { MIN_HEALTHY_NODES: '2' });
    await h.putNodes(nodeState(a.node, ['m1']));
    const unhealthy = await h.get('/health');
    expect(unhealthy.status).toBe(503);
    expect(((await unhealthy.json()) as { reason: string }).reason).toContain('MIN_HEALTHY_NODES');
    await h.putNodes(nodeState(b.node, ['m1']));
    const healthy = await h.get('/health');
    expect(healthy.status).toBe(200);
    expect(await healthy.json()).toMatchObject({ status: 'ok', healthy_nodes: 2 });
    await (await h.post('/v1/chat/completions', chatBody('m1'))).arrayBuffer();
    const metrics = await (await h.get('/metrics')).text();
    expect(metrics).toMatch(/ai_lb_requests_total\{route="chat",model="m1",node="127\.0\.0\.1:\d+",status="200"\} 1/);
    expect(metrics).toContain(`ai_lb_node_up{node="${a.node}"} 1`);
    expect(metrics).toContain(`ai_lb_circuit_state{node="${a.node}"} 0`);
    expect(metrics).toContain('ai_lb_request_duration_seconds_bucket');
  });
});
