import { describe, expect, test } from 'vitest';
import { waitUntil, type FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, nodeState, startGateway, STORE_KINDS, useFakeServers, type Harness } from './testing/gateway-harness.ts';
import { metricValue } from './testing/gateway-processes.ts';

let a: FakeLlmProcess;
let b: FakeLlmProcess;

useFakeServers(2, (servers) => ([a, b] = servers));

const inflightAt = async (...servers: FakeLlmProcess[]) => {
  let sum = 0;
  for (const server of servers) sum += (await server.stats()).inflight;
  return sum;
};
/** Requests this gateway has waiting for a slot (the ai_lb_queue_length gauge). */
const waiting = async (h: Harness) => metricValue(await (await h.get('/metrics')).text(), 'ai_lb_queue_length');
const storeInflight = async (h: Harness) => Object.values(await h.store.getInflight([a.node, b.node])).reduce((x, y) => x + y, 0);

describe.each(STORE_KINDS)('capacity with the %s store', (kind) => {
  test('every eligible node full and no queue: 429 with Retry-After and x-capacity-state', async () => {
    const h = await startGateway(kind, { RETRY_AFTER_SECS: '7' });
    await h.putNodes(nodeState(a.node, ['fault-slow-800'], { maxconn: 1 }), nodeState(b.node, ['fault-slow-800'], { maxconn: 1 }));
    const holding = [
      h.post('/v1/chat/completions', chatBody('fault-slow-800')),
      h.post('/v1/chat/completions', chatBody('fault-slow-800')),
    ];
    await waitUntil(async () => (await inflightAt(a, b)) === 2, { what: 'both nodes busy' });
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
    await h.putNodes(nodeState(a.node, ['fault-slow-500'], { maxconn: 1 }));
    const send = (i: number) => h.post('/v1/chat/completions', chatBody('fault-slow-500'), { headers: { 'x-request-id': `fcfs-${i}` } });
    /** Requests that reached the upstream or wait in line: the ones that have arrived. */
    const arrived = async () => (await a.stats()).requests + ((await waiting(h)) ?? 0);
    // Arrival order 0, 1, 2: each is sent once the one before holds the slot or waits.
    const responses: Promise<Response>[] = [];
    for (let i = 0; i < 3; i++) {
      responses.push(send(i));
      await waitUntil(async () => (await arrived()) >= i + 1, { what: `request ${i} arrived` });
    }
    const statuses = await Promise.all(responses.map(async (r) => (await r).status));
    expect(statuses).toEqual([200, 200, 200]);
    const stats = await a.stats();
    // The upstream saw them one at a time, in arrival order, and the later ones had waited.
    expect(stats.requestIds).toEqual(['fcfs-0', 'fcfs-1', 'fcfs-2']);
    expect(stats.peakInflight).toBe(1);
    const metrics = await (await h.get('/metrics')).text();
    expect(metricValue(metrics, 'ai_lb_queue_wait_seconds_count{result="placed"}')).toBeGreaterThanOrEqual(1);
    expect(metricValue(metrics, 'ai_lb_queue_length')).toBe(0);
  });

  test('QUEUE_TIMEOUT_MS passes without a slot: 429', async () => {
    const h = await startGateway(kind, { QUEUE_TIMEOUT_MS: '200' });
    await h.putNodes(nodeState(a.node, ['fault-slow-1000'], { maxconn: 1 }));
    const holding = h.post('/v1/chat/completions', chatBody('fault-slow-1000'));
    await waitUntil(async () => (await a.stats()).inflight === 1, { what: 'the slot held' });
    const started = Date.now();
    const rejected = await h.post('/v1/chat/completions', chatBody('fault-slow-1000'));
    expect(rejected.status).toBe(429);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(rejected.headers.get('x-capacity-state')).toBe('full');
    await rejected.arrayBuffer();
    expect((await holding).status).toBe(200);
    expect((await a.stats()).requests).toBe(1);
  });

  test('slots are released after success, failure and failover; /v1/nodes shows live in-flight', async () => {
    const h = await startGateway(kind, { ROUTING_STRATEGY: 'ROUND_ROBIN', REQUEST_TIMEOUT_SECS: '1' });
    await b.configure({ failMode: '500' });
    await h.putNodes(
      nodeState(a.node, ['m1', 'fault-slow-500'], { maxconn: 2 }),
      nodeState(b.node, ['m1', 'fault-slow-500'], { maxconn: 2 }),
    );
    // Round robin sends half of them to b first: it fails (500), they fail over to a.
    const attempts: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await h.post('/v1/chat/completions', chatBody('m1'));
      expect(res.status).toBe(200);
      expect(res.headers.get('x-routed-node')).toBe(a.node);
      attempts.push(res.headers.get('x-attempts')!);
      await res.arrayBuffer();
    }
    const failedOver = attempts.filter((n) => n === '2').length;
    expect(failedOver).toBeGreaterThan(0);
    expect(attempts.filter((n) => n !== '1' && n !== '2')).toEqual([]);
    // Every first attempt on b failed, and was retried on a.
    expect((await b.stats()).requests).toBe(failedOver);
    await waitUntil(async () => (await storeInflight(h)) === 0, { what: 'every slot released' });

    await b.configure({ failMode: null });
    const slow = h.post('/v1/chat/completions', chatBody('fault-slow-500'));
    await waitUntil(
      async () => {
        const nodes = (await (await h.get('/v1/nodes')).json()) as { data: Array<{ inflight: number }> };
        return nodes.data.reduce((sum, n) => sum + n.inflight, 0) === 1;
      },
      { what: '/v1/nodes showing the request in flight' },
    );
    const done = await slow;
    expect(done.status).toBe(200);
    await done.arrayBuffer();
    await waitUntil(async () => (await storeInflight(h)) === 0, { what: 'the slot released' });
  });

  test('a long request keeps its slot past SLOT_LEASE_SECS (the lease keeper renews it)', async () => {
    const h = await startGateway(kind, { SLOT_LEASE_SECS: '0.3', REQUEST_TIMEOUT_SECS: '5' });
    await h.putNodes(nodeState(a.node, ['fault-slow-1200'], { maxconn: 1 }));
    const slow = h.post('/v1/chat/completions', chatBody('fault-slow-1200'));
    await waitUntil(async () => (await a.stats()).inflight === 1, { what: 'the slot held' });
    // Time passing is the point here: well past the 300 ms lease, which only renewal keeps.
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect((await h.store.getInflight([a.node]))[a.node]).toBe(1);
    const rejected = await h.post('/v1/chat/completions', chatBody('fault-slow-1200'));
    expect(rejected.status).toBe(429);
    await rejected.arrayBuffer();
    expect((await slow).status).toBe(200);
    await waitUntil(async () => (await h.store.getInflight([a.node]))[a.node] === 0, { what: 'the slot released' });
  });
});
