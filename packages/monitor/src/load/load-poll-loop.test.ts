/**
 * The load poller against real fake engines (one process per kind) through a real
 * monitor and both real stores: every kind's reading as published, and nodes whose load
 * endpoint hangs, lies or answers garbage are skipped without stalling the others.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { MemoryStateStore, silentLogger, systemClock, type StateStore } from '@ai-lb/shared';
import { startFakeEngine, type FakeEngineOptions, type FakeEngineProcess, type LoadFault } from '@ai-lb/testkit';
import { startMonitor, type MonitorHandle } from '../start-monitor.ts';
import { STORE_KINDS, createTestStore, metricValue, testConfig } from '../testing/monitor-test-env.ts';
import { createLoadClient } from './load-client.ts';
import { createLoadPollLoop } from './load-poll-loop.ts';
import { createLoadPollMetrics } from './load-metrics.ts';
import { Registry } from 'prom-client';

const BASE = { modelLoadMs: 200, slots: 2, decodeTokensPerSec: 10, prefillTokensPerSec: 100_000, kvCacheTokens: 10_000 };
const ENGINE_OPTIONS: Record<string, FakeEngineOptions> = {
  vllm: { kind: 'vllm', models: ['Qwen/Qwen3-0.6B'], ...BASE },
  sglang: { kind: 'sglang', models: ['qwen/qwen2.5-0.5b-instruct'], ...BASE },
  llamacpp: { kind: 'llamacpp', models: ['llama-3.1-8b.gguf'], ...BASE },
  llamacppNoMetrics: { kind: 'llamacpp', models: ['llama-3.1-8b.gguf'], llamacppMetrics: false, ...BASE },
  ollama: { kind: 'ollama', models: ['llama3:latest', 'qwen2:7b'], loaded: ['llama3:latest'], maxLoadedModels: 1, ...BASE },
  lmstudio: { kind: 'lmstudio', models: ['meta-llama-3.1-8b-instruct', 'qwen2-7b'], loaded: ['qwen2-7b'], ...BASE },
  liar: { kind: 'vllm', models: ['liar-model'], ...BASE },
};
const engines: Record<string, FakeEngineProcess> = {};

beforeAll(async () => {
  const started = await Promise.all(Object.values(ENGINE_OPTIONS).map((options) => startFakeEngine(options)));
  for (const [i, name] of Object.keys(ENGINE_OPTIONS).entries()) engines[name] = started[i];
}, 60_000);

afterAll(async () => {
  await Promise.all(Object.values(engines).map((engine) => engine.stop()));
});

describe.each(STORE_KINDS)('through a monitor, with the %s store', (storeKind) => {
  let store: StateStore;
  let monitor: MonitorHandle | undefined;

  afterEach(async () => {
    await monitor?.stop();
    monitor = undefined;
    await Promise.all(Object.values(engines).map((engine) => engine.reset()));
    await store.close();
  });

  test('every kind is read with its own endpoint and published; a busy engine shows its queue', async () => {
    store = createTestStore(storeKind);
    const nodes = Object.values(engines).map((e) => e.node);
    monitor = await startMonitor({
      config: testConfig({ SCAN_HOSTS: nodes.join(','), LOAD_POLL_MS: '1000' }),
      store,
      schedule: false,
      listen: false,
      log: silentLogger,
    });
    await monitor.scanOnce();
    const kinds = Object.fromEntries((await store.listNodes()).map((n) => [n.node, n.kind]));
    for (const [name, engine] of Object.entries(engines)) expect(kinds[engine.node], name).toBe(ENGINE_OPTIONS[name].kind);

    // Three requests on a 2-slot vLLM: two decode (slowly), one waits.
    const held = [1, 2, 3].map(() =>
      fetch(`${engines.vllm.url}/v1/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'Qwen/Qwen3-0.6B', messages: [{ role: 'user', content: 'hi' }], max_tokens: 40 }),
      }),
    );
    await until(async () => (await engines.vllm.stats()).waiting === 1, 'vLLM queue');
    const report = await monitor.pollLoadsOnce();
    expect(report).toMatchObject({ failures: [], published: true });
    const loads = await store.getEngineLoads(nodes);
    const at = expect.any(Number);
    const queueOnly = { kvCacheUsage: expect.any(Number), loadedModels: null, at };
    expect(loads[engines.vllm.node]).toEqual({ node: engines.vllm.node, running: 2, waiting: 1, ...queueOnly });
    expect(loads[engines.sglang.node]).toMatchObject({ running: 0, waiting: 0, kvCacheUsage: 0, loadedModels: null });
    expect(loads[engines.llamacpp.node]).toMatchObject({ running: 0, waiting: 0, loadedModels: null });
    expect(loads[engines.llamacppNoMetrics.node]).toMatchObject({ running: 0, waiting: null, kvCacheUsage: null });
    expect(loads[engines.ollama.node]).toMatchObject({ running: null, waiting: null, loadedModels: ['llama3:latest'] });
    expect(loads[engines.lmstudio.node]).toMatchObject({ running: null, loadedModels: ['qwen2-7b'] });
    expect(loads[engines.vllm.node].kvCacheUsage).toBeGreaterThan(0);
    await Promise.all(held.map(async (res) => (await res).text()));
  });
});

describe.each<[LoadFault, string]>([
  ['hang', 'timeout'],
  ['garbage', 'bad_shape'],
  ['negative', 'bad_shape'],
  ['nan', 'bad_shape'],
  ['absurd', 'bad_shape'],
])('an engine whose load endpoint answers %s', (fault, reason) => {
  test(`is skipped (${reason}) and never stalls the others`, async () => {
    const store = new MemoryStateStore();
    const timeoutMs = 400;
    const client = createLoadClient({ timeoutMs });
    const registry = new Registry();
    const metrics = createLoadPollMetrics(registry);
    const loop = createLoadPollLoop({
      store,
      client,
      intervalMs: 1000,
      timeoutMs,
      concurrency: 4,
      clock: systemClock,
      log: silentLogger,
      metrics,
    });
    try {
      for (const name of ['vllm', 'ollama', 'liar']) await store.putNode(nodeOf(engines[name], ENGINE_OPTIONS[name].kind), 60_000);
      await engines.liar.setFault(fault);
      const started = performance.now();
      const report = await loop.pollOnce();
      expect(performance.now() - started).toBeLessThan(timeoutMs + 700);
      expect(report.readings.map((r) => r.node).sort()).toEqual([engines.vllm.node, engines.ollama.node].sort());
      expect(report.failures).toEqual([{ node: engines.liar.node, reason, error: expect.any(String) }]);
      expect(Object.keys(await store.getEngineLoads([engines.liar.node]))).toEqual([]);
      expect(await metricValue(metrics.pollErrors, { reason })).toBe(1);
      expect(await metricValue(metrics.polls, { outcome: 'ok' })).toBe(2);
    } finally {
      await loop.stop();
      await client.close();
      await engines.liar.reset();
      await store.close();
    }
  });
});

test('the loop never overlaps itself: a round that outlasts the interval delays the next one', async () => {
  const store = new MemoryStateStore();
  const timeoutMs = 300;
  const client = createLoadClient({ timeoutMs });
  const metrics = createLoadPollMetrics(new Registry());
  const loop = createLoadPollLoop({
    store,
    client,
    intervalMs: 100,
    timeoutMs,
    concurrency: 2,
    clock: systemClock,
    log: silentLogger,
    metrics,
  });
  try {
    await store.putNode(nodeOf(engines.liar, 'vllm'), 60_000);
    await store.putNode(nodeOf(engines.vllm, 'vllm'), 60_000);
    await engines.liar.setFault('hang');
    const started = performance.now();
    loop.start();
    await until(async () => (await metricValue(metrics.polls, { outcome: 'failed' })) >= 3, 'three rounds');
    const elapsed = performance.now() - started;
    // Each round waits for the hanging node's timeout: three rounds take at least three timeouts.
    expect(elapsed).toBeGreaterThanOrEqual(2 * timeoutMs);
    expect(await metricValue(metrics.polls, { outcome: 'ok' })).toBeGreaterThanOrEqual(3);
    const stopAt = performance.now();
    await loop.stop();
    expect(performance.now() - stopAt).toBeLessThan(timeoutMs + 200);
  } finally {
    await loop.stop();
    await client.close();
    await engines.liar.reset();
    await store.close();
  }
});

function nodeOf(engine: FakeEngineProcess, kind: FakeEngineOptions['kind']) {
  return {
    node: engine.node,
    host: '127.0.0.1',
    port: engine.port,
    kind,
    healthy: true,
    models: engine.options.models,
    loadedModels: [],
    maxconn: 0,
    capacitySource: 'default' as const,
    detectedMaxconn: null,
    latencyMs: null,
    lastSeenMs: 0,
    checkedAtMs: 0,
    error: null,
    serverLoad: null,
  };
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
