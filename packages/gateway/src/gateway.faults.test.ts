/**
 * Every upstream fault, stream and non-stream, with two nodes serving the same
 * model. Each test asserts what the caller got, how many attempts each node saw (the fake
 * server's /__fake/stats) and how long it took. Faults are played by a real fake-server
 * process (testkit fake-inference.ts): by model name, or for one whole server via failMode.
 * Covered elsewhere and referenced, not repeated: a single always-failing node retried
 * with backoff, all-timeout 504, and 429 Retry-After waited out on a single node
 * (gateway.failover.test.ts).
 */
import { describe, expect, test } from 'vitest';
import type { FakeLlmProcess } from '@ai-lb/testkit';
import {
  chatBody,
  eventually,
  nodeState,
  sseData,
  startGateway,
  STORE_KINDS,
  type Harness,
  useFakeServers,
} from './testing/gateway-harness.ts';

let a: FakeLlmProcess;
let b: FakeLlmProcess;

useFakeServers(2, (servers) => ([a, b] = servers));

type Mode = 'stream' | 'json';
const MODES: Mode[] = ['stream', 'json'];
const FAST = { REQUEST_TIMEOUT_SECS: '0.5', STREAM_IDLE_TIMEOUT_SECS: '0.5', MAX_RETRIES: '2', ROUTING_STRATEGY: 'ROUND_ROBIN' };

interface Reply {
  status: number;
  node: string | null;
  attempts: number;
  contentType: string;
  text: string;
  ms: number;
}

async function call(h: Harness, mode: Mode, model: string, extra: Record<string, unknown> = {}): Promise<Reply> {
  const started = Date.now();
  const res = await h.post('/v1/chat/completions', chatBody(model, { stream: mode === 'stream', ...extra }));
  const text = await res.text();
  return {
    status: res.status,
    node: res.headers.get('x-routed-node'),
    attempts: Number(res.headers.get('x-attempts')),
    contentType: res.headers.get('content-type') ?? '',
    text,
    ms: Date.now() - started,
  };
}

async function callEach(h: Harness, mode: Mode, model: string, count = 2): Promise<Reply[]> {
  const out: Reply[] = [];
  for (let i = 0; i < count; i++) out.push(await call(h, mode, model));
  return out;
}

/** The answer's text: message content (JSON) or the concatenated deltas (stream). */
function contentOf(reply: Reply): string {
  if (!reply.contentType.includes('event-stream')) {
    return (JSON.parse(reply.text) as { choices: Array<{ message: { content: string } }> }).choices[0].message.content;
  }
  return sseData(reply.text)
    .filter((d) => d !== '[DONE]')
    .map((d) => (JSON.parse(d) as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content ?? '')
    .join('');
}

/** A whole answer from `node`: 200, complete content, a stream closed by [DONE] with no error event. */
function expectComplete(reply: Reply, mode: Mode, node: string, content = 'Hello from fake'): void {
  expect(reply.status, reply.text).toBe(200);
  expect(reply.node).toBe(node);
  expect(reply.contentType).toContain(mode === 'stream' ? 'text/event-stream' : 'application/json');
  expect(contentOf(reply)).toBe(content);
  if (mode === 'stream') {
    expect(sseData(reply.text).at(-1)).toBe('[DONE]');
    expect(reply.text).not.toContain('"error"');
  }
}

/** A stream that reached the client and then broke: partial content, one error event last, no [DONE]. */
function expectBrokenStream(reply: Reply, messagePart: string): void {
  expect(reply.status).toBe(200);
  const data = sseData(reply.text);
  expect(data).not.toContain('[DONE]');
  const last = JSON.parse(data.at(-1)!) as { error?: { message: string; type: string; code: string } };
  expect(last.error?.type).toBe('server_error');
  expect(last.error?.message).toContain(messagePart);
  expect(data.filter((d) => d.includes('"error"'))).toHaveLength(1);
}

async function requestsOf(): Promise<[number, number]> {
  return [(await a.stats()).requests, (await b.stats()).requests];
}

describe.each(STORE_KINDS)('faults with the %s store', (kind) => {
  const both = async (env: Record<string, string> = {}, models = ['m1']) => {
    const h = await startGateway(kind, { ...FAST, ...env });
    await h.putNodes(nodeState(a.node, models), nodeState(b.node, models));
    return h;
  };

  test.each(MODES)('1. 429 with Retry-After (%s): fail over at once; the node is not asked again before it', async (mode) => {
    const h = await both();
    await a.configure({ failMode: 'fault-429-retry-after-1' });
    const started = Date.now();
    const replies = await callEach(h, mode, 'm1', 4);
    for (const reply of replies) expectComplete(reply, mode, b.node);
    // Failover, no waiting out the second; and the later requests honour a's Retry-After too.
    expect(Date.now() - started).toBeLessThan(900);
    expect(await requestsOf()).toEqual([1, 4]);
  });

  test.each(MODES)(
    '2. 429 without Retry-After (%s): fail over; when all say 429, bounded attempts with a backoff, then 429',
    async (mode) => {
      const h = await both({}, ['m1', 'fault-status-429-json']);
      await a.configure({ failMode: 'fault-status-429-json' });
      for (const reply of await callEach(h, mode, 'm1')) expectComplete(reply, mode, b.node);
      expect(await requestsOf()).toEqual([1, 2]);
      await Promise.all([a.reset(), b.reset(), a.configure({ failMode: null })]);

      const reply = await call(h, mode, 'fault-status-429-json');
      // Every node busy: a 429 the client's SDK backs off on, not a 502 it retries at once.
      expect(reply.status).toBe(429);
      expect(reply.contentType).toContain('application/json');
      expect(reply.attempts).toBe(3);
      expect(JSON.parse(reply.text).error.message).toMatch(/answered 429/);
      const counts = (await requestsOf()).sort();
      expect(counts).toEqual([1, 2]);
      // The node asked twice waited a jittered backoff (>= 50 ms) in between: no tight loop.
      expect(reply.ms).toBeGreaterThanOrEqual(50);
      expect(reply.ms).toBeLessThan(2000);
    },
  );

  test.each(MODES)('3. 500 once, then healthy (%s): answered, after a retry', async (mode) => {
    const h = await both();
    await Promise.all([a.configure({ failMode: 'fault-500-once' }), b.configure({ failMode: 'fault-500-once' })]);
    const reply = await call(h, mode, 'm1');
    // Both nodes fail their first request; the first node, healthy by then, answers the third attempt.
    expect(reply.status).toBe(200);
    expect(contentOf(reply)).toBe('Hello from fake');
    expect((await requestsOf()).sort()).toEqual([1, 2]);
    if (mode === 'json') expect(reply.attempts).toBe(3);
    expect(reply.ms).toBeLessThan(1500);
  });

  test.each(MODES)('4. 503 persistently on one node (%s): fail over within the retry budget', async (mode) => {
    const h = await both();
    await a.configure({ failMode: '503' });
    const replies = await callEach(h, mode, 'm1');
    for (const reply of replies) expectComplete(reply, mode, b.node);
    expect(replies.map((r) => r.attempts).sort()).toEqual([1, 2]);
    expect(await requestsOf()).toEqual([1, 2]);
  });

  test.each(MODES)('5. connection reset before any byte (%s): fail over', async (mode) => {
    const h = await both();
    await a.configure({ failMode: 'reset' });
    for (const reply of await callEach(h, mode, 'm1')) expectComplete(reply, mode, b.node);
    expect(await requestsOf()).toEqual([1, 2]);
  });

  test.each(MODES)('6. accepted, then silence (%s): abandoned after REQUEST_TIMEOUT_SECS, never retried', async (mode) => {
    const h = await both({ REQUEST_TIMEOUT_SECS: '0.3' });
    await a.configure({ failMode: 'hang' });
    const replies = await callEach(h, mode, 'm1');
    for (const reply of replies) expectComplete(reply, mode, b.node);
    const slow = replies.reduce((x, y) => (x.ms > y.ms ? x : y));
    expect(slow.ms).toBeGreaterThanOrEqual(290);
    expect(slow.ms).toBeLessThan(1000);
    expect(await requestsOf()).toEqual([1, 2]);
    // The silent request was cancelled upstream.
    await eventually(async () => (await a.stats()).inflight === 0, 2000);
    expect((await a.stats()).aborted).toBe(1);
  });

  test.each(MODES)('7. slow first token (%s): FIRST_TOKEN_TIMEOUT_SECS (stream) / REQUEST_TIMEOUT_SECS (body) fail over', async (mode) => {
    // Non-stream: the whole answer is the first token, so FIRST_TOKEN_TIMEOUT_SECS does not
    // cut it short (a long generation is legitimate); REQUEST_TIMEOUT_SECS bounds the body.
    const h = await both({ FIRST_TOKEN_TIMEOUT_SECS: '0.2', STREAM_IDLE_TIMEOUT_SECS: '5' });
    await a.configure({ failMode: 'fault-slow-first-token-3000' });
    const replies = await callEach(h, mode, 'm1');
    for (const reply of replies) expectComplete(reply, mode, b.node);
    const slow = replies.reduce((x, y) => (x.ms > y.ms ? x : y));
    expect(slow.ms).toBeGreaterThanOrEqual(mode === 'stream' ? 190 : 490);
    expect(slow.ms).toBeLessThan(mode === 'stream' ? 700 : 1200);
    expect(await requestsOf()).toEqual([1, 2]);
  });

  test.each(MODES)('8. cut mid-answer (%s): stream ends with an error event; non-stream fails over', async (mode) => {
    const h = await both();
    await a.configure({ failMode: 'fault-cut-stream' });
    const replies = await callEach(h, mode, 'm1');
    if (mode === 'json') {
      for (const reply of replies) expectComplete(reply, mode, b.node);
      expect(await requestsOf()).toEqual([1, 2]);
      return;
    }
    const cut = replies.find((r) => r.node === a.node)!;
    expectBrokenStream(cut, 'upstream stream failed');
    expect(contentOf({ ...cut, text: cut.text.slice(0, cut.text.lastIndexOf('data: {"error"')) })).toBe('Hello partial');
    expectComplete(replies.find((r) => r.node === b.node)!, mode, b.node);
    // No second answer glued on: nothing is retried after bytes reached the client.
    expect(await requestsOf()).toEqual([1, 1]);
  });

  test.each(MODES)(
    '9. stall (%s): stream ends after STREAM_IDLE_TIMEOUT_SECS; non-stream fails over; gateway stays healthy',
    async (mode) => {
      const h = await both({ STREAM_IDLE_TIMEOUT_SECS: '0.3', REQUEST_TIMEOUT_SECS: '0.3' });
      await a.configure({ failMode: 'fault-stall-stream' });
      const replies = await callEach(h, mode, 'm1');
      const stalled = replies.reduce((x, y) => (x.ms > y.ms ? x : y));
      expect(stalled.ms).toBeGreaterThanOrEqual(290);
      expect(stalled.ms).toBeLessThan(1000);
      if (mode === 'stream') {
        expectBrokenStream(stalled, 'idle');
        expect(await requestsOf()).toEqual([1, 1]);
      } else {
        for (const reply of replies) expectComplete(reply, mode, b.node);
        expect(await requestsOf()).toEqual([1, 2]);
      }
      await eventually(async () => (await h.store.getInflight([a.node]))[a.node] === 0);
      await eventually(async () => (await a.stats()).inflight === 0);
      await a.configure({ failMode: null });
      for (const reply of await callEach(h, mode, 'm1')) expect(reply.status).toBe(200);
    },
  );

  test.each(MODES)('10. malformed event / body (%s): stream drops it and completes; a non-JSON 200 body fails over', async (mode) => {
    const h = await both();
    await a.configure({ failMode: 'fault-bad-sse' });
    const replies = await callEach(h, mode, 'm1');
    if (mode === 'stream') {
      const fromA = replies.find((r) => r.node === a.node)!;
      expectComplete(fromA, mode, a.node, 'Hello partial');
      expect(fromA.text).not.toContain('this is not json');
      expect(await requestsOf()).toEqual([1, 1]);
    } else {
      for (const reply of replies) expectComplete(reply, mode, b.node);
      expect(await requestsOf()).toEqual([1, 2]);
    }
  });

  test.each(MODES)('11. complete but unterminated (%s): no [DONE] / close-delimited body finishes promptly', async (mode) => {
    // Timeouts are long here: finishing by a timer instead of by the answer would show.
    const h = await startGateway(kind, { ...FAST, REQUEST_TIMEOUT_SECS: '3', STREAM_IDLE_TIMEOUT_SECS: '3' });
    await h.putNodes(nodeState(a.node, ['m1']));
    await a.configure({ failMode: 'fault-no-done' });
    const reply = await call(h, mode, 'm1');
    expect(reply.status).toBe(200);
    expect(reply.text).not.toContain('"error"');
    expect(contentOf(reply)).toBe(mode === 'stream' ? 'Hello partial' : 'Hello from fake');
    expect(reply.ms).toBeLessThan(1000);
  });

  test.each(MODES)('12. context_length_exceeded / content_policy_violation (%s): passed through at once, not retried', async (mode) => {
    const h = await both({}, ['fault-context-length', 'fault-content-policy']);
    for (const [model, code] of [
      ['fault-context-length', 'context_length_exceeded'],
      ['fault-content-policy', 'content_policy_violation'],
    ]) {
      const reply = await call(h, mode, model);
      expect(reply.status).toBe(400);
      expect(reply.contentType).toContain('application/json');
      expect(reply.attempts).toBe(1);
      const { error } = JSON.parse(reply.text) as { error: { code: string; message: string } };
      expect(error.code).toBe(code);
      expect(error.message).toMatch(/maximum context length|content policy/);
      expect(reply.ms).toBeLessThan(500);
    }
    const [na, nb] = await requestsOf();
    expect(na + nb).toBe(2);
  });

  test.each(MODES)('13. a flapping node (%s): circuit opens, others serve, traffic returns within one breaker TTL', async (mode) => {
    const h = await both({ CIRCUIT_BREAKER_THRESHOLD: '2', CIRCUIT_BREAKER_TTL_SECS: '1', MAX_RETRIES: '1' });
    await a.configure({ failMode: '503' });
    const circuitOfA = async () =>
      ((await (await h.get('/v1/nodes')).json()) as { data: Array<{ node: string; circuit: string }> }).data.find((n) => n.node === a.node)!
        .circuit;
    for (let i = 0; i < 6 && (await circuitOfA()) !== 'open'; i++) expect((await call(h, mode, 'm1')).status).toBe(200);
    expect(await circuitOfA()).toBe('open');
    const failedWhileFlapping = (await a.stats()).requests;
    expect(failedWhileFlapping).toBe(2);
    await a.configure({ failMode: null });
    const healedAt = Date.now();
    let backOnA = -1;
    for (let i = 0; i < 60 && backOnA < 0; i++) {
      const reply = await call(h, mode, 'm1');
      expect(reply.status).toBe(200);
      if (reply.node === a.node) backOnA = Date.now() - healedAt;
      else await new Promise((r) => setTimeout(r, 50));
    }
    // TTL (1 s) plus the fleet cache's refresh (0.2 s in the harness) and one request.
    expect(backOnA).toBeGreaterThanOrEqual(0);
    expect(backOnA).toBeLessThan(1600);
    await eventually(async () => (await circuitOfA()) === 'closed', 2000);
  });

  test.each(MODES)(
    '14. failover accounting (%s): id, usage and x-routed-node from the answering node; failures counted as such',
    async (mode) => {
      const h = await both();
      await a.configure({ failMode: '500' });
      const replies: Reply[] = [];
      for (let i = 0; i < 2; i++)
        replies.push(await call(h, mode, 'm1', { stream_options: mode === 'stream' ? { include_usage: true } : undefined }));
      for (const reply of replies) {
        expectComplete(reply, mode, b.node);
        const payloads =
          mode === 'stream'
            ? sseData(reply.text)
                .filter((d) => d !== '[DONE]')
                .map((d) => JSON.parse(d))
            : [JSON.parse(reply.text)];
        // The fake's ids carry its pid: the answer really is b's.
        expect(payloads.every((p: { id: string }) => p.id.startsWith(`chatcmpl-${b.ready.pid}-`))).toBe(true);
        expect(payloads.every((p: { model: string }) => p.model === 'm1')).toBe(true);
        expect(payloads.at(-1).usage).toEqual({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
      }
      const metrics = await (await h.get('/metrics')).text();
      expect(metrics).toContain(`ai_lb_upstream_failures_total{node="${a.node}",reason="status_5xx"} 1`);
      expect(metrics).toContain(`ai_lb_requests_total{route="chat",model="m1",node="${b.node}",status="200"} 2`);
      expect(metrics).not.toMatch(new RegExp(`ai_lb_requests_total\\{[^}]*node="${a.node}"`));
      expect(metrics).toContain('ai_lb_retries_total{kind="failover"} 1');
    },
  );

  test.each(MODES)('15. client disconnect (%s): queued, waiting for headers, mid-answer: upstream aborted, slot freed', async (mode) => {
    const h = await startGateway(kind, { ...FAST, REQUEST_TIMEOUT_SECS: '10', STREAM_IDLE_TIMEOUT_SECS: '10', QUEUE_TIMEOUT_MS: '10000' });
    await h.putNodes(nodeState(a.node, ['fault-hang', 'fault-stall-stream'], { maxconn: 1 }));
    const inflight = async () => (await h.store.getInflight([a.node]))[a.node];
    const send = (model: string, signal: AbortSignal) =>
      h.post('/v1/chat/completions', chatBody(model, { stream: mode === 'stream' }), { signal }).catch((e: Error) => e);

    // Waiting for headers: the holder of the only slot.
    const holder = new AbortController();
    const held = send('fault-hang', holder.signal);
    await eventually(async () => (await a.stats()).inflight === 1);
    // Queued behind it: leaving the queue must not leave anything behind either.
    const queued = new AbortController();
    const waiting = send('fault-hang', queued.signal);
    await new Promise((r) => setTimeout(r, 150));
    queued.abort();
    expect(await waiting).toBeInstanceOf(Error);
    await new Promise((r) => setTimeout(r, 100));
    expect((await a.stats()).requests).toBe(1);
    expect(await inflight()).toBe(1);
    const leftAt = Date.now();
    holder.abort();
    expect(await held).toBeInstanceOf(Error);
    await eventually(async () => (await a.stats()).aborted === 1, 2000);
    await eventually(async () => (await inflight()) === 0, 2000);
    expect(Date.now() - leftAt).toBeLessThan(1000);

    // Mid-answer: the stream after its first chunk; the non-stream body half-read.
    const reader = new AbortController();
    const pending = send('fault-stall-stream', reader.signal);
    if (mode === 'stream') {
      const res = await pending;
      expect(res).toBeInstanceOf(Response);
      await (res as Response).body!.getReader().read();
    } else {
      // The gateway holds the half-read body (nothing reached the client yet).
      await eventually(async () => (await a.stats()).requests === 2);
      await new Promise((r) => setTimeout(r, 100));
    }
    const midAt = Date.now();
    reader.abort();
    if (mode === 'json') expect(await pending).toBeInstanceOf(Error);
    await eventually(async () => (await a.stats()).aborted === 2, 2000);
    await eventually(async () => (await inflight()) === 0, 2000);
    expect(Date.now() - midAt).toBeLessThan(1000);
    expect((await a.stats()).requests).toBe(2);
  });

  test.each(MODES)('16. not-quite-OpenAI servers (%s): non-envelope errors become the envelope; a 200 error fails over', async (mode) => {
    const models = ['m1', 'fault-status-422-detail', 'fault-status-403-html', 'fault-status-401-text', 'fault-html-error'];
    const h = await both({}, models);
    const cases: Array<[string, number, string]> = [
      ['fault-status-422-detail', 422, 'fake upstream error 422'],
      ['fault-status-403-html', 403, 'fake upstream error 403'],
      ['fault-status-401-text', 401, 'fake upstream error 401'],
    ];
    for (const [model, status, message] of cases) {
      const reply = await call(h, mode, model);
      expect(reply.status).toBe(status);
      const { error } = JSON.parse(reply.text) as { error: { message: string; type: string; code: string } };
      expect(error.message).toContain(message);
      expect(error.type).toBe('invalid_request_error');
      expect(error.code).toBe(`upstream_${status}`);
    }
    // A 5xx HTML page on every node: 502 whose message carries the page's text.
    const html = await call(h, mode, 'fault-html-error');
    expect(html.status).toBe(502);
    expect(JSON.parse(html.text).error.message).toContain('fake upstream error 500');
    // An error as the first event of a 200 stream (or as a 200 body) fails over like a 5xx.
    await Promise.all([a.reset(), b.reset()]);
    await a.configure({ failMode: 'fault-error-first-event' });
    for (const reply of await callEach(h, mode, 'm1')) {
      expectComplete(reply, mode, b.node);
      expect(reply.text).not.toContain('model failed to load');
    }
    expect(await requestsOf()).toEqual([1, 2]);
    // A stream ending without [DONE] after finish_reason is complete: test 11.
  });
});
