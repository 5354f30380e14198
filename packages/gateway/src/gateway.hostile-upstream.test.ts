/**
 * Hostile upstreams against a real gateway process: what a broken or malicious server does
 * may cost its own streams, never the rest of the gateway.
 */
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { createStateStore, loadConfig } from '@ai-lb/shared';
import { startFakeLlmServer, uniquePrefix, type FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, eventually, nodeState, sseData } from './testing/gateway-harness.ts';
import { postChat, replicaEnv, startReplicas, stopAll, type GatewayProcess } from './testing/gateway-processes.ts';

let upstream: FakeLlmProcess;
let healthy: FakeLlmProcess;
let gateway: GatewayProcess | undefined;

beforeAll(async () => {
  [upstream, healthy] = await Promise.all([startFakeLlmServer({ models: ['fault-drip-event'] }), startFakeLlmServer({ models: ['m1'] })]);
  const env = replicaEnv(inject('redisUrl'), uniquePrefix('hostile'), { MAX_RETRIES: '0' });
  const store = createStateStore(loadConfig(env), {});
  try {
    await store.putNode(nodeState(upstream.node, ['fault-drip-event']), 120_000);
    await store.putNode(nodeState(healthy.node, ['m1']), 120_000);
  } finally {
    await store.close();
  }
  [gateway] = await startReplicas(1, env);
}, 60_000);

afterAll(async () => {
  await stopAll([gateway]);
  await Promise.all([upstream?.stop(), healthy?.stop()]);
});

/** Time of one answer, in ms; the status must be 200. */
async function answerMs(request: () => Promise<Response>): Promise<number> {
  const started = performance.now();
  const res = await request();
  await res.arrayBuffer();
  expect(res.status).toBe(200);
  return performance.now() - started;
}

describe('an upstream that drips one SSE event that never ends', () => {
  test('costs only its own streams: each ends with an error event at the event limit; /health and other nodes stay fast', async () => {
    const gw = gateway!;
    const streams = Array.from({ length: 4 }, async () => {
      const started = performance.now();
      const res = await postChat(gw, chatBody('fault-drip-event', { stream: true }), { signal: AbortSignal.timeout(60_000) });
      const body = await res.text();
      return { status: res.status, body, ms: performance.now() - started };
    });
    let running = true;
    const all = Promise.all(streams).finally(() => (running = false));
    all.catch(() => undefined); // when a check below fails first, the streams' end is not awaited

    // /health and a request to the healthy node, one after another, for as long as the
    // drips run (bounded by their timeout).
    const health: number[] = [];
    const chat: number[] = [];
    const signal = () => AbortSignal.timeout(10_000);
    while (running && health.length < 1000) {
      health.push(await answerMs(() => fetch(`http://127.0.0.1:${gw.ready.port}/health`, { signal: signal() })));
      chat.push(await answerMs(() => postChat(gw, chatBody('m1'), { signal: signal() })));
      await new Promise((r) => setTimeout(r, 50));
    }
    const results = await all;

    for (const { status, body, ms } of results) {
      expect(status).toBe(200);
      const data = sseData(body);
      expect(JSON.parse(data[0]).choices[0].delta.content).toBe('Hello');
      const last = JSON.parse(data[data.length - 1]) as { error?: { message: string; code: string } };
      expect(last.error?.code).toBe('upstream_stream_error');
      expect(last.error?.message).toMatch(/SSE event exceeded 262144 characters/);
      // 256 KiB at 200 bytes per ms is ≈ 1.3 s of dripping; far more means the gateway choked.
      expect(ms).toBeLessThan(15_000);
    }
    expect(health.length).toBeGreaterThan(0);
    // Tens of ms on an idle machine; the bound allows for a busy CI one. Rescanning the
    // pending event on every chunk made /health take over 10 s here.
    expect(Math.max(...health)).toBeLessThan(2000);
    expect(Math.max(...chat)).toBeLessThan(2000);

    // The gateway hung up on the upstream: its requests ended, none is left dripping.
    await eventually(async () => (await upstream.stats()).inflight === 0, 5000);
  }, 90_000);
});
