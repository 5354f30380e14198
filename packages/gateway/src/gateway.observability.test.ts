/**
 * What an operator sees of each request, on a real gateway with real fake upstreams: the
 * access-log line (LOG_REQUESTS), the LLM metrics on /metrics, and the dashboard's state.
 */
import { describe, expect, test } from 'vitest';
import { createLogger, type DashboardState } from '@ai-lb/shared';
import { waitUntil, type FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, nodeState, sseData, startGateway, STORE_KINDS, useFakeServers } from './testing/gateway-harness.ts';
import { metricValue } from './testing/gateway-processes.ts';

let a: FakeLlmProcess;
let b: FakeLlmProcess;

useFakeServers(2, (servers) => ([a, b] = servers));

const KEY = 'observability-test-key-0123456789';

/** A pino logger whose lines are kept, raw and parsed. */
function capturedLog() {
  const raw: string[] = [];
  const log = createLogger({ level: 'info', destination: { write: (line: string) => void raw.push(line) } });
  const requests = () => raw.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'request');
  return { log, raw, requests };
}

describe.each(STORE_KINDS)('observability with the %s store', (kind) => {
  test('one access-log line per routed request: ids, models, node, status, attempts, TTFT, tokens, client; never a key or a body', async () => {
    const { log, raw, requests } = capturedLog();
    const h = await startGateway(kind, { GATEWAY_API_KEYS: KEY, MODEL_SENTINELS: 'auto' }, { log });
    await h.putNodes(nodeState(a.node, ['m1']));
    const auth = { authorization: `Bearer ${KEY}`, 'x-request-id': 'req-json-1', 'x-forwarded-for': '203.0.113.9' };
    const json = await h.post('/v1/chat/completions', chatBody('auto', { messages: [{ role: 'user', content: 'secret prompt' }] }), {
      headers: auth,
    });
    expect(json.status).toBe(200);
    await json.arrayBuffer();
    const stream = await h.post('/v1/chat/completions', chatBody('m1', { stream: true }), {
      headers: { ...auth, 'x-request-id': 'req-stream-1' },
    });
    const streamed = sseData(await stream.text());
    expect(streamed.at(-1)).toBe('[DONE]');
    const withUsage = await h.post('/v1/chat/completions', chatBody('m1', { stream: true, stream_options: { include_usage: true } }), {
      headers: { ...auth, 'x-request-id': 'req-stream-2' },
    });
    await withUsage.text();
    const unknown = await h.post('/v1/chat/completions', chatBody('no-such-model'), { headers: { ...auth, 'x-request-id': 'req-404' } });
    expect(unknown.status).toBe(404);
    await unknown.arrayBuffer();
    const unauthorized = await h.post('/v1/chat/completions', chatBody('m1'), {
      headers: { authorization: 'Bearer wrong-key-9876543210' },
    });
    expect(unauthorized.status).toBe(401);
    await unauthorized.arrayBuffer();

    await waitUntil(() => requests().length === 5, { what: 'five access-log lines' });
    const lines = requests();
    const byId = (id: string) => lines.find((line) => line.requestId === id)!;
    expect(byId('req-json-1')).toEqual({
      level: 'info',
      time: expect.any(Number),
      requestId: 'req-json-1',
      method: 'POST',
      path: '/v1/chat/completions',
      surface: 'chat',
      client: expect.stringMatching(/127\.0\.0\.1/),
      forwardedFor: '203.0.113.9',
      modelRequested: 'auto',
      model: 'm1',
      node: a.node,
      status: 200,
      outcome: 'ok',
      stream: false,
      attempts: 1,
      failovers: 0,
      queueWaitMs: null,
      ttftMs: null,
      durationMs: expect.any(Number),
      promptTokens: expect.any(Number),
      completionTokens: expect.any(Number),
      tokensEstimated: false,
      msg: 'request',
    });
    // Every line has the same keys in the same order: one shape.
    const keys = Object.keys(byId('req-json-1')).join();
    for (const line of lines) expect(Object.keys(line).join()).toBe(keys);
    expect(byId('req-stream-1')).toMatchObject({ stream: true, outcome: 'ok', ttftMs: expect.any(Number), tokensEstimated: true });
    // Without usage, one token per content event: every event but [DONE].
    expect(byId('req-stream-1').completionTokens).toBe(streamed.length - 1);
    expect(byId('req-stream-2')).toMatchObject({ stream: true, tokensEstimated: false, promptTokens: expect.any(Number) });
    expect(byId('req-404')).toMatchObject({ status: 404, outcome: 'error', modelRequested: 'no-such-model', model: null, attempts: 0 });
    const refused = lines.find((line) => line.status === 401)!;
    expect(refused).toMatchObject({ outcome: 'error', model: null, node: null, modelRequested: null });
    const text = raw.join('');
    expect(text).not.toContain(KEY);
    expect(text).not.toContain('wrong-key-9876543210');
    expect(text).not.toContain('secret prompt');
    expect(text).not.toMatch(/authorization/i);
  });

  test('a client that leaves before the answer: its line says aborted, 499, and still names the client', async () => {
    const { log, requests } = capturedLog();
    const h = await startGateway(kind, {}, { log });
    await h.putNodes(nodeState(a.node, ['fault-slow-2000']));
    const controller = new AbortController();
    const pending = h.post('/v1/chat/completions', chatBody('fault-slow-2000'), { signal: controller.signal }).catch(() => null);
    await waitUntil(async () => (await a.stats()).inflight === 1, { what: 'the upstream has it' });
    controller.abort();
    await pending;
    await waitUntil(() => requests().length === 1, { what: 'the line' });
    expect(requests()[0]).toMatchObject({
      status: 499,
      outcome: 'aborted',
      node: null,
      attempts: 1,
      client: expect.stringMatching(/127\.0\.0\.1/),
    });
  });

  test('LOG_REQUESTS=false: no access-log line, the metrics still count', async () => {
    const { log, requests } = capturedLog();
    const h = await startGateway(kind, { LOG_REQUESTS: 'false' }, { log });
    await h.putNodes(nodeState(a.node, ['m1']));
    const res = await h.post('/v1/chat/completions', chatBody('m1'));
    await res.arrayBuffer();
    const page = await (await h.get('/metrics')).text();
    expect(metricValue(page, `ai_lb_requests_total{route="chat",model="m1",node="${a.node}",status="200"}`)).toBe(1);
    expect(requests()).toEqual([]);
  });

  test('a request that waited and one refused at capacity: queue wait in the line, ai_lb_capacity_rejections_total counts', async () => {
    const { log, requests } = capturedLog();
    const h = await startGateway(kind, { QUEUE_TIMEOUT_MS: '3000' }, { log });
    await h.putNodes(nodeState(a.node, ['fault-slow-400'], { maxconn: 1 }));
    const first = h.post('/v1/chat/completions', chatBody('fault-slow-400'), { headers: { 'x-request-id': 'holder' } });
    await waitUntil(async () => (await a.stats()).inflight === 1, { what: 'the slot held' });
    const waiter = await h.post('/v1/chat/completions', chatBody('fault-slow-400'), { headers: { 'x-request-id': 'waiter' } });
    expect(waiter.status).toBe(200);
    await waiter.arrayBuffer();
    await (await first).arrayBuffer();
    await waitUntil(() => requests().length === 2, { what: 'two lines' });
    const waited = requests().find((line) => line.requestId === 'waiter')!;
    expect(waited.queueWaitMs).toBeGreaterThan(100);
    expect(requests().find((line) => line.requestId === 'holder')!.queueWaitMs).toBeNull();

    const h2 = await startGateway(kind, {}, { log });
    await h2.putNodes(nodeState(b.node, ['fault-slow-400'], { maxconn: 1 }));
    const holding = h2.post('/v1/chat/completions', chatBody('fault-slow-400'));
    await waitUntil(async () => (await b.stats()).inflight === 1, { what: 'the slot held' });
    const rejected = await h2.post('/v1/chat/completions', chatBody('fault-slow-400'), { headers: { 'x-request-id': 'refused' } });
    expect(rejected.status).toBe(429);
    await rejected.arrayBuffer();
    await (await holding).arrayBuffer();
    const page = await (await h2.get('/metrics')).text();
    expect(metricValue(page, 'ai_lb_capacity_rejections_total{model="fault-slow-400"}')).toBe(1);
    expect(metricValue(page, 'ai_lb_requests_total{route="chat",model="fault-slow-400",node="none",status="429"}')).toBe(1);
    await waitUntil(() => requests().some((line) => line.requestId === 'refused'), { what: 'the 429 line' });
    expect(requests().find((line) => line.requestId === 'refused')).toMatchObject({ status: 429, attempts: 0, node: null });
  });

  test('the dashboard: the page is open, its state needs the key and shows the fleet and the traffic', async () => {
    const h = await startGateway(kind, { GATEWAY_API_KEYS: KEY });
    await h.putNodes(nodeState(a.node, ['m1'], { maxconn: 4 }), nodeState(b.node, ['m1', 'm2'], { healthy: false, error: 'refused' }));
    const page = await h.get('/dashboard');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await page.text()).toContain('/dashboard/assets/');
    const script = await h.get('/dashboard/assets/dashboard.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    const etag = script.headers.get('etag')!;
    await script.arrayBuffer();
    const again = await h.get('/dashboard/assets/dashboard.js', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect((await h.get('/dashboard/assets/nope.js')).status).toBe(404);
    expect((await h.get('/dashboard/state')).status).toBe(401);
    expect((await h.get('/dashboard/state', { authorization: 'Bearer wrong-key-9876543210' })).status).toBe(401);

    const auth = { authorization: `Bearer ${KEY}` };
    for (let i = 0; i < 3; i++) await (await h.post('/v1/chat/completions', chatBody('m1'), { headers: auth })).arrayBuffer();
    await (await h.post('/v1/chat/completions', chatBody('m1', { stream: true }), { headers: auth })).text();
    // A slot is released just after its response has ended (the store call follows the answer).
    const slotsUsed = async () => {
      const current = (await (await h.get('/dashboard/state', auth)).json()) as DashboardState;
      return current.fleet.find((n) => n.node === a.node)?.slots.used;
    };
    await waitUntil(async () => (await slotsUsed()) === 0, { what: "the last request's slot released" });
    const res = await h.get('/dashboard/state', auth);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const state = (await res.json()) as DashboardState;
    expect(state.service).toBe('gateway');
    expect(state.summary).toMatchObject({ nodes: 2, healthyNodes: 1, models: 2, queued: 0 });
    const nodeA = state.fleet.find((n) => n.node === a.node)!;
    expect(nodeA).toMatchObject({ healthy: true, slots: { used: 0, cap: 4 } });
    expect(nodeA.lastMinute).toMatchObject({ requests: 4, errors: 0 });
    expect(nodeA.lastMinute!.ttftMsP50).not.toBeNull();
    expect(state.fleet.find((n) => n.node === b.node)).toMatchObject({ healthy: false, lastError: { source: 'probe' } });
    expect(state.models.find((m) => m.id === 'm1')).toMatchObject({ eligibleNodes: 1, queued: 0, lastMinute: { requests: 4 } });
    const total = state.traffic!.points.reduce((sum, p) => sum + p.requests, 0);
    expect(total).toBe(4);
    expect(state.traffic!.points.reduce((sum, p) => sum + p.status2xx, 0)).toBe(4);
  });
});
