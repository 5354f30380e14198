/**
 * The monitor against real fake servers (one process per kind) and both real stores:
 * what it writes, capacity precedence, gateway skipping, unhealthy marking and TTL expiry.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { startFakeLlmServer, type FakeLlmProcess } from '@ai-lb/testkit';
import { createLogger, GATEWAY_MARK_HEADER, type StateStore } from '@ai-lb/shared';
import { startMonitor, type MonitorHandle } from './start-monitor.ts';
import { STORE_KINDS, createTestStore, metricValue, nodesById, testConfig, waitFor } from './testing/monitor-test-env.ts';

const fakes: Record<string, FakeLlmProcess> = {};

beforeAll(async () => {
  const servers = {
    openai: { kind: 'openai', models: ['gpt-a', 'gpt-b'] },
    ollama: { kind: 'ollama', models: ['llama3:latest', 'qwen2:7b'] },
    llamacpp: { kind: 'llamacpp', models: ['llama-3.1-8b.gguf'], slots: 3 },
    vllm: { kind: 'vllm', models: ['Qwen/Qwen3-0.6B'] },
    lmstudio: { kind: 'lmstudio', models: ['meta-llama-3.1-8b-instruct', 'text-embedding-nomic'] },
    sglang: { kind: 'sglang', models: ['qwen/qwen2.5-0.5b-instruct'], slots: 8 },
    gateway: { kind: 'openai', models: ['auto'], headers: [`${GATEWAY_MARK_HEADER}: 1`] },
  } as const;
  await Promise.all(
    Object.entries(servers).map(async ([name, server]) => {
      fakes[name] = await startFakeLlmServer({
        ...server,
        models: [...server.models],
        headers: 'headers' in server ? [...server.headers] : [],
      });
    }),
  );
});

afterAll(async () => {
  await Promise.all(Object.values(fakes).map((fake) => fake.stop()));
});

describe.each(STORE_KINDS)('with the %s store', (storeKind) => {
  let store: StateStore;
  let monitor: MonitorHandle | undefined;
  const ownFakes: FakeLlmProcess[] = [];

  beforeEach(() => {
    store = createTestStore(storeKind);
  });

  afterEach(async () => {
    await monitor?.stop();
    monitor = undefined;
    await Promise.all(ownFakes.splice(0).map((fake) => fake.stop()));
    await store.close();
  });

  test('NODE_API_KEYS: a node with a key is probed with it as bearer, others get no Authorization', async () => {
    const config = testConfig({
      SCAN_HOSTS: `${fakes.openai.node},${fakes.ollama.node}`,
      NODE_API_KEYS: `${fakes.openai.node}=sk-node-secret`,
    });
    await Promise.all([fakes.openai.reset(), fakes.ollama.reset()]);
    monitor = await startMonitor({ config, store, schedule: false, listen: false });
    await monitor.scanOnce();
    const [keyed, open] = await Promise.all([fakes.openai.stats(), fakes.ollama.stats()]);
    expect(keyed.discoveryAuthorizations.length).toBeGreaterThan(0);
    expect(new Set(keyed.discoveryAuthorizations)).toEqual(new Set(['Bearer sk-node-secret']));
    expect(open.discoveryAuthorizations).toEqual([]);
    expect(Object.keys(await nodesById(store)).sort()).toEqual([fakes.ollama.node, fakes.openai.node].sort());
  });

  test('logs the fleet as structured fields when it changes, not on every scan', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
    monitor = await startMonitor({ config: testConfig({ SCAN_HOSTS: fakes.vllm.node }), store, schedule: false, listen: false, log });
    await monitor.scanOnce();
    await monitor.scanOnce();
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'info',
        msg: 'fleet changed',
        targets: 1,
        durationMs: expect.any(Number),
        nodes: [{ node: fakes.vllm.node, kind: 'vllm' }],
      }),
    ]);
  });

  test('records every kind: models, loaded models, kind, capacity with its source, load', async () => {
    const config = testConfig({
      SCAN_HOSTS: Object.values(fakes)
        .map((f) => f.node)
        .join(','),
      DEFAULT_MAXCONN: '2',
      // MAXCONN_MAP wins over the 3 slots llama.cpp reports.
      MAXCONN_MAP: `${fakes.llamacpp.node}=7`,
    });
    monitor = await startMonitor({ config, store, schedule: false, listen: false });
    const before = Date.now();
    const report = await monitor.scanOnce();
    const nodes = await nodesById(store);

    expect(Object.keys(nodes).sort()).toEqual(
      ['openai', 'ollama', 'llamacpp', 'vllm', 'lmstudio', 'sglang'].map((k) => fakes[k].node).sort(),
    );
    expect(nodes[fakes.openai.node]).toMatchObject({
      host: '127.0.0.1',
      port: fakes.openai.port,
      kind: 'openai',
      healthy: true,
      error: null,
      models: ['gpt-a', 'gpt-b'],
      loadedModels: [],
      maxconn: 2,
      capacitySource: 'default',
      detectedMaxconn: null,
      serverLoad: null,
    });
    expect(nodes[fakes.ollama.node]).toMatchObject({
      kind: 'ollama',
      models: ['llama3:latest', 'qwen2:7b'],
      loadedModels: ['llama3:latest'],
      maxconn: 2,
      capacitySource: 'default',
      detectedMaxconn: null,
    });
    expect(nodes[fakes.llamacpp.node]).toMatchObject({
      kind: 'llamacpp',
      models: ['llama-3.1-8b.gguf'],
      maxconn: 7,
      capacitySource: 'map',
      detectedMaxconn: 3,
    });
    expect(nodes[fakes.vllm.node]).toMatchObject({
      kind: 'vllm',
      models: ['Qwen/Qwen3-0.6B'],
      serverLoad: { running: 3, waiting: 1 },
      capacitySource: 'default',
    });
    expect(nodes[fakes.lmstudio.node]).toMatchObject({
      kind: 'lmstudio',
      models: ['meta-llama-3.1-8b-instruct', 'text-embedding-nomic'],
      loadedModels: ['meta-llama-3.1-8b-instruct'],
    });
    expect(nodes[fakes.sglang.node]).toMatchObject({
      kind: 'sglang',
      models: ['qwen/qwen2.5-0.5b-instruct'],
      maxconn: 8,
      capacitySource: 'detected',
      detectedMaxconn: 8,
    });
    for (const node of Object.values(nodes)) {
      expect(node.latencyMs).toBeGreaterThan(0);
      expect(node.lastSeenMs).toBe(node.checkedAtMs);
      expect(node.checkedAtMs).toBeGreaterThanOrEqual(before);
    }
    // The ai-lb gateway answered /v1/models, but is never a node.
    expect(nodes[fakes.gateway.node]).toBeUndefined();
    expect(report.outcomes).toEqual({ node: 6, closed: 0, gateway: 1, failed: 0 });
    expect(await metricValue(monitor.metrics.targetsProbed, { outcome: 'gateway' })).toBe(1);
    expect(await metricValue(monitor.metrics.nodesFound, { kind: 'llamacpp' })).toBe(1);
    expect(await metricValue(monitor.metrics.probeErrors)).toBe(0);
  });

  test('models and detected capacity follow the server from one scan to the next', async () => {
    const fake = await startFakeLlmServer({ kind: 'llamacpp', models: ['a.gguf'], slots: 2 });
    ownFakes.push(fake);
    monitor = await startMonitor({
      config: testConfig({ SCAN_HOSTS: fake.node }),
      store,
      schedule: false,
      listen: false,
    });
    await monitor.scanOnce();
    expect((await nodesById(store))[fake.node]).toMatchObject({ models: ['a.gguf'], maxconn: 2, capacitySource: 'detected' });
    await fake.configure({ models: ['b.gguf'], slots: 5 });
    await monitor.scanOnce();
    expect((await nodesById(store))[fake.node]).toMatchObject({ models: ['b.gguf'], maxconn: 5, detectedMaxconn: 5 });
  });

  test('a node that fails is unhealthy at its first failed probe, and gone once its TTL ran out', async () => {
    const fake = await startFakeLlmServer({ kind: 'openai', models: ['m'] });
    ownFakes.push(fake);
    const config = testConfig({ SCAN_HOSTS: fake.node, NODE_TTL_SECS: '1' });
    monitor = await startMonitor({ config, store, schedule: false, listen: false });

    await monitor.scanOnce();
    const putAt = Date.now();
    expect((await nodesById(store))[fake.node]).toMatchObject({ healthy: true });

    await fake.configure({ kind: 'http-500' });
    await monitor.scanOnce();
    expect((await nodesById(store))[fake.node]).toMatchObject({ healthy: false, error: expect.stringMatching(/^http_status: /) });

    await fake.stop();
    await monitor.scanOnce(); // refused: still unhealthy, and the TTL is NOT refreshed
    const afterStop = (await nodesById(store))[fake.node];
    if (afterStop) expect(afterStop).toMatchObject({ healthy: false, error: expect.stringMatching(/^refused: /) });

    const gone = await waitFor(async () => (await store.listNodes()).length === 0, 3000);
    expect(gone).toBe(true);
    expect(Date.now() - putAt).toBeLessThan(2500); // expired ~1 s after the last successful probe
    await monitor.scanOnce(); // a closed port that is no longer a node writes nothing
    expect(await store.listNodes()).toEqual([]);
  });
});

describe('/health and /metrics on MONITOR_PORT', () => {
  let monitor: MonitorHandle | undefined;
  let store: StateStore | undefined;
  afterEach(async () => {
    await monitor?.stop();
    await store?.close();
    monitor = store = undefined;
  });

  test('503 before the first scan, 200 after it, 503 once the last scan is older than the node TTL', async () => {
    let now = Date.now();
    store = createTestStore('memory');
    const config = testConfig({ SCAN_HOSTS: `${fakes.ollama.node},${fakes.vllm.node}`, SCAN_INTERVAL: '10' });
    monitor = await startMonitor({ config, store, schedule: false, clock: () => now });
    const base = `http://127.0.0.1:${monitor.port}`;

    const starting = await fetch(`${base}/health`);
    expect(starting.status).toBe(503);
    expect(await starting.json()).toMatchObject({ status: 'starting' });

    await monitor.scanOnce();
    const ok = await fetch(`${base}/health`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'ok', nodes: 2, targets: 2, lastScanAt: new Date(now).toISOString() });

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('ai_lb_monitor_scan_duration_seconds_count 1');
    expect(metrics).toContain('ai_lb_monitor_nodes_found{kind="ollama"} 1');
    expect(metrics).toContain('ai_lb_monitor_targets_probed_total{outcome="node"} 2');
    expect(metrics).toContain('ai_lb_monitor_scans_skipped_total 0');
    expect(metrics).not.toMatch(/^ai_lb_(?!monitor_)/m); // its own registry: no gateway or default metrics

    now += config.nodeTtlMs + 1;
    const stale = await fetch(`${base}/health`);
    expect(stale.status).toBe(503);
    expect(await stale.json()).toMatchObject({ status: 'stale' });

    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { type: 'not_found_error', code: 'route_not_found' } });
  });

  test('binds MONITOR_HOST, not the gateway address: loopback by default', async () => {
    store = createTestStore('memory');
    expect(testConfig({}).monitorHost).toBe('127.0.0.1');
    // 127.0.0.2 is loopback too: bound there, the monitor must not answer on 127.0.0.1.
    const config = testConfig({ SCAN_HOSTS: fakes.openai.node, LOAD_BALANCER_HOST: '0.0.0.0', MONITOR_HOST: '127.0.0.2' });
    monitor = await startMonitor({ config, store, schedule: false });
    expect((await fetch(`http://127.0.0.2:${monitor.port}/metrics`)).status).toBe(200);
    await expect(fetch(`http://127.0.0.1:${monitor.port}/metrics`)).rejects.toThrow();
  });

  test('a scan whose writes fail is reported by /health (503) and counted, not thrown at the process', async () => {
    store = createTestStore('memory');
    await store.close(); // every write now fails
    monitor = await startMonitor({ config: testConfig({ SCAN_HOSTS: fakes.openai.node }), store, schedule: false });
    await expect(monitor.scanOnce()).rejects.toThrow();
    const health = await fetch(`http://127.0.0.1:${monitor.port}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'error', reason: expect.stringMatching(/^last scan failed: /) });
    expect(await metricValue(monitor.metrics.scans, { outcome: 'error' })).toBe(1);
    store = undefined; // already closed
  });
});
