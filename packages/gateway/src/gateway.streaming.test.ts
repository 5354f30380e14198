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

const FAST = { REQUEST_TIMEOUT_SECS: '1', STREAM_IDLE_TIMEOUT_SECS: '0.5', MAX_RETRIES: '2', ROUTING_STRATEGY: 'ROUND_ROBIN' };

async function stream(h: Harness, model: string) {
  const res = await h.post('/v1/chat/completions', chatBody(model, { stream: true }));
  return { res, status: res.status, headers: res.headers, text: await res.text() };
}

function contentOf(data: string[]): string {
  return data
    .filter((d) => d !== '[DONE]')
    .map((d) => (JSON.parse(d) as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content ?? '')
    .join('');
}

describe.each(STORE_KINDS)('streaming with the %s store', (kind) => {
  test('a stream passes through event by event with the routing headers', async () => {
    const h = await startGateway(kind, FAST);
    await h.putNodes(nodeState(a.node, ['m1']));
    const { status, headers, text } = await stream(h, 'm1');
    expect(status).toBe(200);
    expect(headers.get('content-type')).toContain('text/event-stream');
    expect(headers.get('x-routed-node')).toBe(a.node);
    expect(headers.get('x-selected-model')).toBe('m1');
    expect(headers.get('x-request-id')).toBeTruthy();
    const data = sseData(text);
    expect(data.at(-1)).toBe('[DONE]');
    expect(contentOf(data)).toBe('Hello from fake');
  });

  test('chunks reach the client as they arrive, not buffered whole', async () => {
    const h = await startGateway(kind, { ...FAST, STREAM_IDLE_TIMEOUT_SECS: '30' });
    await h.putNodes(nodeState(a.node, ['fault-stall-stream']));
    const res = await h.post('/v1/chat/completions', chatBody('fault-stall-stream', { stream: true }));
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    // The upstream sent two chunks and went silent for good: a buffering gateway would
    // hold them until the 30 s idle timeout; they must be here long before.
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 3000));
    const first = await Promise.race([reader.read(), timeout]);
    expect(first).not.toBe('timeout');
    expect(new TextDecoder().decode((first as { value: Uint8Array }).value)).toContain('Hello');
    await reader.cancel();
  });

  test('an error event as the first event fails over to another node', async () => {
    const h = await startGateway(kind, FAST);
    await a.configure({ failMode: 'fault-error-first-event' });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    for (let i = 0; i < 2; i++) {
      const { status, headers, text } = await stream(h, 'm1');
      expect(status).toBe(200);
      expect(headers.get('x-routed-node')).toBe(b.node);
      expect(text).not.toContain('model failed to load');
      expect(contentOf(sseData(text))).toBe('Hello from fake');
    }
    expect((await a.stats()).requests).toBe(1);
  });

  test('a stream no node could start is an ordinary HTTP error, not a 200 stream', async () => {
    const h = await startGateway(kind, FAST);
    await h.putNodes(nodeState(a.node, ['fault-error-first-event']), nodeState(b.node, ['fault-error-first-event']));
    const { status, headers, text } = await stream(h, 'fault-error-first-event');
    expect(status).toBe(502);
    expect(headers.get('content-type')).toContain('application/json');
    expect(JSON.parse(text).error.message).toContain('model failed to load');
  });

  test('a stream cut after its first byte ends with one SSE error event, no second answer', async () => {
    const h = await startGateway(kind, FAST);
    await h.putNodes(nodeState(a.node, ['fault-cut-stream']), nodeState(b.node, ['fault-cut-stream']));
    const { status, text } = await stream(h, 'fault-cut-stream');
    expect(status).toBe(200);
    const data = sseData(text);
    expect(data).not.toContain('[DONE]');
    const last = JSON.parse(data.at(-1)!) as { error?: { message: string; type: string } };
    expect(last.error?.type).toBe('server_error');
    expect(contentOf(data.slice(0, -1))).toBe('Hello partial');
    // Exactly one attempt: nothing is retried after bytes reached the client.
    expect((await a.stats()).requests + (await b.stats()).requests).toBe(1);
  });

  test('an event whose data is not JSON is dropped and counted', async () => {
    const h = await startGateway(kind, FAST);
    await h.putNodes(nodeState(a.node, ['fault-bad-sse']));
    const { status, text } = await stream(h, 'fault-bad-sse');
    expect(status).toBe(200);
    expect(text).not.toContain('this is not json');
    const data = sseData(text);
    expect(data.at(-1)).toBe('[DONE]');
    expect(contentOf(data)).toBe('Hello partial');
    const metrics = await (await h.get('/metrics')).text();
    expect(metrics).toContain(`ai_lb_sse_dropped_events_total{node="${a.node}"} 1`);
  });

  test('a stream ending without [DONE] after finish_reason is complete; without finish_reason it is broken', async () => {
    const h = await startGateway(kind, FAST);
    await h.putNodes(nodeState(a.node, ['fault-no-done', 'fault-no-finish']));
    const complete = await stream(h, 'fault-no-done');
    expect(sseData(complete.text).some((d) => d.includes('"error"'))).toBe(false);
    expect(contentOf(sseData(complete.text))).toBe('Hello partial');
    const broken = await stream(h, 'fault-no-finish');
    expect(JSON.parse(sseData(broken.text).at(-1)!).error.message).toContain('before the answer was complete');
  });

  test('STREAM_IDLE_TIMEOUT_SECS ends a silent stream with an error event and frees the slot', async () => {
    const h = await startGateway(kind, FAST);
    await h.putNodes(nodeState(a.node, ['fault-stall-stream']));
    const started = Date.now();
    const { status, text } = await stream(h, 'fault-stall-stream');
    expect(status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(JSON.parse(sseData(text).at(-1)!).error.message).toContain('idle');
    await eventually(async () => (await h.store.getInflight([a.node]))[a.node] === 0);
    await eventually(async () => (await a.stats()).inflight === 0);
  });

  test('a stream still running when the grace period of a shutdown ends gets an SSE error event, not a silent cut', async () => {
    const h = await startGateway(kind, { STREAM_IDLE_TIMEOUT_SECS: '30' });
    await h.putNodes(nodeState(a.node, ['fault-stall-stream']));
    const res = await h.post('/v1/chat/completions', chatBody('fault-stall-stream', { stream: true }));
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('data:');
    const closing = h.gateway.close(200);
    let rest = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    await closing;
    const last = JSON.parse(sseData(rest).at(-1)!) as { error: { code: string } };
    expect(last.error.code).toBe('gateway_shutdown');
    await eventually(async () => (await a.stats()).inflight === 0);
  });

  test('FIRST_TOKEN_TIMEOUT_SECS fails over while nothing reached the client', async () => {
    const h = await startGateway(kind, { ...FAST, FIRST_TOKEN_TIMEOUT_SECS: '0.3' });
    await a.configure({ failMode: 'fault-slow-first-token-2000' });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    for (let i = 0; i < 2; i++) {
      const { status, headers, text } = await stream(h, 'm1');
      expect(status).toBe(200);
      expect(headers.get('x-routed-node')).toBe(b.node);
      expect(contentOf(sseData(text))).toBe('Hello from fake');
    }
    expect((await a.stats()).requests).toBe(1);
  });

  test('a client leaving mid-stream aborts the upstream and frees the slot', async () => {
    const h = await startGateway(kind, { ...FAST, STREAM_IDLE_TIMEOUT_SECS: '30' });
    await h.putNodes(nodeState(a.node, ['fault-stall-stream']));
    const controller = new AbortController();
    const res = await h.post('/v1/chat/completions', chatBody('fault-stall-stream', { stream: true }), { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    // An uncapped node's count reaches the store with the gateway's next in-flight report.
    await eventually(async () => (await h.store.getInflight([a.node]))[a.node] === 1, 2000);
    controller.abort();
    await eventually(async () => (await a.stats()).aborted === 1, 2000);
    await eventually(async () => (await h.store.getInflight([a.node]))[a.node] === 0, 2000);
  });
});
