import { describe, expect, test } from 'vitest';
import type { FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, eventually, nodeState, startGateway, STORE_KINDS, useFakeServers } from './testing/gateway-harness.ts';

let a: FakeLlmProcess;
let b: FakeLlmProcess;

useFakeServers(2, (servers) => ([a, b] = servers));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(STORE_KINDS)('capacity with the %s store', (kind) => {
  test('every eligible node full and no queue: 429 with Retry-After and x-capacity-state', async () => {
    const h = await startGateway(kind, { RETRY_AFTER_SECS: '7' });
    await h.putNodes(nodeState(a.node, ['fault-slow-800'], { maxconn: 1 }), nodeState(b.node, ['fault-slow-800'], { maxconn: 1 }));
    const holding = [
      h.post('/v1/chat/completions', chatBody('fault-slow-800')),
      h.post('/v1/chat/completions', chatBody('fault-slow-800')),
    ];
    await eventually(async () => (await a.stats()).inflight + (await b.stats()).inflight === 2);
    const rejected = await h.post('/v1/chat/completions', chatBody('fault-slow-800'));
    expect(rejected.status).toBe(429);
    expect(rejected.headers.get('retry-after')).toBe('7');
    expect(rejected.headers.get('x-capacity-state')).toBe('full');
    expect(rejected.headers.get('x-attempts')).toBe('0');
    const { error } = (await rejected.json()) as { error: { type: string; code: string } };
    expect(error).toMatchObject({ type: 'rate_limit_error', code: 'capacity_exhausted' });
    expect((await Promise.all(holding)).map((r) => r.status)).toEqual([200, 200]);
    expect((await a.stats()).peakInflight).toBe(1);
    expect((await b.stats()).peakInflight).toBe(1);
  });

  test('QUEUE_TIMEOUT_MS: a request waits for a freed slot, first come first served', async () => {
    const h = await startGateway(kind, { QUEUE_TIMEOUT_MS: '5000' });
    await h.putNodes(nodeState(a.node, ['fault-slow-300'], { maxconn: 1 }));
    const started = Date.now();
    const order: number[] = [];
    const requests = [0, 1, 2].map(async (i) => {
      await sleep(i * 60); // arrival order 0, 1, 2
      const res = await h.post('/v1/chat/completions', chatBody('fault-slow-300'));
      order.push(i);
      return res.status;
    });
    expect(await Promise.all(requests)).toEqual([200, 200, 200]);
    expect(order).toEqual([0, 1, 2]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(850);
    expect((await a.stats()).peakInflight).toBe(1);
  });

  test('QUEUE_TIMEOUT_MS passes without a slot: 429', async () => {
    const h = await startGateway(kind, { QUEUE_TIMEOUT_MS: '200' });
    await h.putNodes(nodeState(a.node, ['fault-slow-1000'], { maxconn: 1 }));
    const holding = h.post('/v1/chat/completions', chatBody('fault-slow-1000'));
    await eventually(async () => (await a.stats()).inflight === 1);
    const started = Date.now();
    const rejected = await h.post('/v1/chat/completions', chatBody('fault-slow-1000'));
    expect(rejected.status).toBe(429);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(rejected.headers.get('x-capacity-state')).toBe('full');
    await rejected.arrayBuffer();
    expect((await holding).status).toBe(200);
  });

  test('slots are released after success, failure and failover; /v1/nodes shows live in-flight', async () => {
    const h = await startGateway(kind, { ROUTING_STRATEGY: 'ROUND_ROBIN', REQUEST_TIMEOUT_SECS: '1' });
    await b.configure({ failMode: '500' });
    await h.putNodes(
      nodeState(a.node, ['m1', 'fault-slow-500'], { maxconn: 2 }),
      nodeState(b.node, ['m1', 'fault-slow-500'], { maxconn: 2 }),
    );
    for (let i = 0; i < 4; i++) await (await h.post('/v1/chat/completions', chatBody('m1'))).arrayBuffer();
    await eventually(async () => Object.values(await h.store.getInflight([a.node, b.node])).every((n) => n === 0));
    await b.configure({ failMode: null });
    const slow = h.post('/v1/chat/completions', chatBody('fault-slow-500'));
    await eventually(async () => {
      const nodes = (await (await h.get('/v1/nodes')).json()) as { data: Array<{ inflight: number }> };
      return nodes.data.reduce((sum, n) => sum + n.inflight, 0) === 1;
    });
    await (await slow).arrayBuffer();
    await eventually(async () => Object.values(await h.store.getInflight([a.node, b.node])).every((n) => n === 0));
  });

  test('a long request keeps its slot past SLOT_LEASE_SECS (the lease keeper renews it)', async () => {
    const h = await startGateway(kind, { SLOT_LEASE_SECS: '0.3', REQUEST_TIMEOUT_SECS: '5' });
    await h.putNodes(nodeState(a.node, ['fault-slow-1200'], { maxconn: 1 }));
    const slow = h.post('/v1/chat/completions', chatBody('fault-slow-1200'));
    await eventually(async () => (await a.stats()).inflight === 1);
    await sleep(800); // well past the 300 ms lease
    expect((await h.store.getInflight([a.node]))[a.node]).toBe(1);
    const rejected = await h.post('/v1/chat/completions', chatBody('fault-slow-1200'));
    expect(rejected.status).toBe(429);
    await rejected.arrayBuffer();
    expect((await slow).status).toBe(200);
    await eventually(async () => (await h.store.getInflight([a.node]))[a.node] === 0);
  });
});
