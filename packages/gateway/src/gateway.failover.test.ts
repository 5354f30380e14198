import { describe, expect, test } from 'vitest';
import { freePort, type FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, eventually, nodeState, startGateway, STORE_KINDS, type Harness, useFakeServers } from './testing/gateway-harness.ts';

let a: FakeLlmProcess;
let b: FakeLlmProcess;

useFakeServers(2, (servers) => ([a, b] = servers));

const FAST = { REQUEST_TIMEOUT_SECS: '0.5', MAX_RETRIES: '2', ROUTING_STRATEGY: 'ROUND_ROBIN' };

interface Envelope {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Sends `count` requests one after another; ROUND_ROBIN makes each node the first choice in turn. */
async function sendSequential(h: Harness, count: number, body: object) {
  const results: Array<{ status: number; node: string | null; attempts: number; body: string }> = [];
  for (let i = 0; i < count; i++) {
    const res = await h.post('/v1/chat/completions', body);
    results.push({
      status: res.status,
      node: res.headers.get('x-routed-node'),
      attempts: Number(res.headers.get('x-attempts')),
      body: await res.text(),
    });
  }
  return results;
}

describe.each(STORE_KINDS)('failover with the %s store', (kind) => {
  test('a refused connection fails over to the next node', async () => {
    const h = await startGateway(kind, FAST);
    const dead = `127.0.0.1:${await freePort()}`;
    await h.putNodes(nodeState(dead, ['m1']), nodeState(a.node, ['m1']));
    const results = await sendSequential(h, 2, chatBody('m1'));
    expect(results.map((r) => r.status)).toEqual([200, 200]);
    expect(results.every((r) => r.node === a.node)).toBe(true);
    // One of the two requests tried the dead node first.
    expect(results.map((r) => r.attempts).sort()).toEqual([1, 2]);
  });

  test('an upstream 500 fails over; the failing node saw exactly one attempt', async () => {
    const h = await startGateway(kind, FAST);
    await a.configure({ failMode: '500' });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    const results = await sendSequential(h, 2, chatBody('m1'));
    expect(results.every((r) => r.status === 200 && r.node === b.node)).toBe(true);
    expect((await a.stats()).requests).toBe(1);
    expect((await b.stats()).requests).toBe(2);
  });

  test('every node failing: 502 naming model, attempts and nodes; never the same node twice in a row', async () => {
    const h = await startGateway(kind, FAST);
    await h.putNodes(nodeState(a.node, ['fault-detail-error']), nodeState(b.node, ['fault-detail-error']));
    const res = await h.post('/v1/chat/completions', chatBody('fault-detail-error'));
    expect(res.status).toBe(502);
    expect(res.headers.get('x-attempts')).toBe('3');
    const { error } = (await res.json()) as Envelope;
    expect(error.type).toBe('server_error');
    expect(error.message).toContain("model 'fault-detail-error'");
    expect(error.message).toContain('3 attempts');
    expect(error.message).toContain(a.node);
    expect(error.message).toContain(b.node);
    // The upstream's {"detail": …} message is carried into the envelope.
    expect(error.message).toContain('fake upstream error 500');
    const counts = [(await a.stats()).requests, (await b.stats()).requests].sort();
    expect(counts).toEqual([1, 2]);
  });

  test('a single failing node is retried MAX_RETRIES times with a backoff, not in a tight loop', async () => {
    const h = await startGateway(kind, FAST);
    await h.putNodes(nodeState(a.node, ['fault-503']));
    const started = Date.now();
    const res = await h.post('/v1/chat/completions', chatBody('fault-503'));
    expect(res.status).toBe(502);
    expect(res.headers.get('x-attempts')).toBe('3');
    expect((await a.stats()).requests).toBe(3);
    // Two backoffs of at least 50 ms each.
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
  });

  test('429 with a Retry-After longer than the budget: the node is skipped for the request', async () => {
    const h = await startGateway(kind, FAST);
    await h.putNodes(nodeState(a.node, ['fault-429-retry-after-5']), nodeState(b.node, ['fault-429-retry-after-5']));
    const started = Date.now();
    const res = await h.post('/v1/chat/completions', chatBody('fault-429-retry-after-5'));
    // Each node once, then nothing left: no waiting 5 s, no hammering; the client is told the nodes' wait.
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.headers.get('x-attempts')).toBe('2');
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await a.stats()).requests + (await b.stats()).requests).toBe(2);
  });

  test('429 with a short Retry-After: the node is tried again only after it', async () => {
    const h = await startGateway(kind, { ...FAST, REQUEST_TIMEOUT_SECS: '5', MAX_RETRIES: '1' });
    await h.putNodes(nodeState(a.node, ['fault-429-retry-after-1']));
    const started = Date.now();
    const res = await h.post('/v1/chat/completions', chatBody('fault-429-retry-after-1'));
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.headers.get('x-attempts')).toBe('2');
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  test('a node that hangs past REQUEST_TIMEOUT_SECS is abandoned for the next one', async () => {
    const h = await startGateway(kind, FAST);
    await a.configure({ failMode: 'hang' });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    const results = await sendSequential(h, 2, chatBody('m1'));
    expect(results.every((r) => r.status === 200 && r.node === b.node)).toBe(true);
    expect(results.map((r) => r.attempts).sort()).toEqual([1, 2]);
    // The hung request was cancelled upstream, not left dangling.
    await eventually(async () => (await a.stats()).inflight === 0);
  });

  test('every attempt timing out is a 504; a timed-out node is not retried', async () => {
    const h = await startGateway(kind, { ...FAST, REQUEST_TIMEOUT_SECS: '0.3' });
    await h.putNodes(nodeState(a.node, ['fault-hang']), nodeState(b.node, ['fault-hang']));
    const res = await h.post('/v1/chat/completions', chatBody('fault-hang'));
    expect(res.status).toBe(504);
    expect(res.headers.get('x-attempts')).toBe('2');
    const { error } = (await res.json()) as Envelope;
    expect(error.code).toBe('upstream_timeout');
    expect((await a.stats()).requests).toBe(1);
    expect((await b.stats()).requests).toBe(1);
  });

  test('a connection reset fails over', async () => {
    const h = await startGateway(kind, FAST);
    await b.configure({ failMode: 'reset' });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    const results = await sendSequential(h, 2, chatBody('m1'));
    expect(results.every((r) => r.status === 200 && r.node === a.node)).toBe(true);
  });

  test('a non-stream body cut half-way fails over before anything is sent', async () => {
    const h = await startGateway(kind, FAST);
    await a.configure({ failMode: 'fault-cut-stream' });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    const results = await sendSequential(h, 2, chatBody('m1'));
    expect(results.every((r) => r.status === 200 && r.node === b.node)).toBe(true);
    expect(results.every((r) => JSON.parse(r.body).choices[0].message.content === 'Hello from fake')).toBe(true);
  });

  test('caller faults pass through untouched and are not retried', async () => {
    const h = await startGateway(kind, FAST);
    const models = ['fault-context-length', 'fault-status-422-detail', 'fault-status-403-html', 'fault-status-401-text'];
    await h.putNodes(nodeState(a.node, models), nodeState(b.node, models));

    const context = await h.post('/v1/chat/completions', chatBody('fault-context-length'));
    expect(context.status).toBe(400);
    expect(context.headers.get('x-attempts')).toBe('1');
    expect(context.headers.get('x-routed-node')).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(((await context.json()) as Envelope).error).toMatchObject({ code: 'context_length_exceeded', param: 'messages' });

    const detail = await h.post('/v1/chat/completions', chatBody('fault-status-422-detail'));
    expect(detail.status).toBe(422);
    expect(((await detail.json()) as Envelope).error).toMatchObject({ message: 'fake upstream error 422', type: 'invalid_request_error' });

    const html = await h.post('/v1/chat/completions', chatBody('fault-status-403-html'));
    expect(html.status).toBe(403);
    expect(((await html.json()) as Envelope).error.message).toContain('fake upstream error 403');

    const text = await h.post('/v1/chat/completions', chatBody('fault-status-401-text'));
    expect(text.status).toBe(401);
    expect(((await text.json()) as Envelope).error.message).toBe('fake upstream error 401');

    expect((await a.stats()).requests + (await b.stats()).requests).toBe(4);
  });

  test('the circuit opens after CIRCUIT_BREAKER_THRESHOLD failures, then one probe closes it', async () => {
    const h = await startGateway(kind, { ...FAST, CIRCUIT_BREAKER_THRESHOLD: '2', CIRCUIT_BREAKER_TTL_SECS: '1', MAX_RETRIES: '1' });
    await a.configure({ failMode: '500' });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    await sendSequential(h, 4, chatBody('m1'));
    expect((await a.stats()).requests).toBe(2);
    const circuit = async () =>
      ((await (await h.get('/v1/nodes')).json()) as { data: Array<{ node: string; circuit: string; failures: number }> }).data.find(
        (n) => n.node === a.node,
      )!;
    expect(await circuit()).toMatchObject({ circuit: 'open', failures: 2 });
    // While open, a is not tried at all.
    await h.gateway.refreshFleet();
    const whileOpen = await sendSequential(h, 4, chatBody('m1'));
    expect(whileOpen.every((r) => r.status === 200 && r.node === b.node && r.attempts === 1)).toBe(true);
    expect((await a.stats()).requests).toBe(2);
    // After the TTL a is half-open; healed, its probe succeeds and closes the circuit.
    await a.configure({ failMode: null });
    await eventually(async () => (await circuit()).circuit === 'half_open', 3000);
    await h.gateway.refreshFleet();
    await sendSequential(h, 4, chatBody('m1'));
    expect(await circuit()).toMatchObject({ circuit: 'closed', failures: 0 });
    expect((await a.stats()).requests).toBeGreaterThan(2);
  });

  test('a client that disconnects cancels the upstream request and frees its slot', async () => {
    const h = await startGateway(kind, { ...FAST, REQUEST_TIMEOUT_SECS: '30' });
    await h.putNodes(nodeState(a.node, ['fault-hang'], { maxconn: 1 }));
    const controller = new AbortController();
    const pending = h.post('/v1/chat/completions', chatBody('fault-hang'), { signal: controller.signal }).catch((e: Error) => e);
    await eventually(async () => (await a.stats()).inflight === 1);
    expect(await h.store.getInflight([a.node])).toEqual({ [a.node]: 1 });
    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    await eventually(async () => (await a.stats()).aborted === 1, 2000);
    await eventually(async () => (await h.store.getInflight([a.node]))[a.node] === 0, 2000);
    // Nothing was retried on the client's behalf.
    expect((await a.stats()).requests).toBe(1);
  });
});
