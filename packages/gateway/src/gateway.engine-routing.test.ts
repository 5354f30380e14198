/**
 * Routing on what the engines report, end to end: fake engines (real processes that serve
 * vLLM's /metrics), ai-lb as `pnpm start` runs it (monitor polling LOAD_POLL_MS, gateway
 * routing LEAST_LOADED), and a client that bypasses ai-lb. Also MODEL_ALIASES through the
 * gateway: every node is sent the id it lists, on every attempt.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  spawnTsProcess,
  startFakeEngine,
  waitUntil,
  type FakeEngineOptions,
  type FakeEngineProcess,
  type FakeLlmProcess,
  type SpawnedProcess,
} from '@ai-lb/testkit';
import { chatBody, nodeState, startGateway, STORE_KINDS, useFakeServers } from './testing/gateway-harness.ts';

/** The composition above the gateway (gateway + monitor, in-memory state): started by path, never imported. */
const START_ENTRY = fileURLToPath(new URL('../../cli/src/start.ts', import.meta.url));

interface EngineView {
  node: string;
  engine: { running: number | null; waiting: number | null; age_ms: number } | null;
}

/** Long outside requests: they hold both slots of the engine and queue behind them. */
const OUTSIDE = { concurrency: 6, maxTokens: 400 };

describe('LEAST_LOADED with engine load readings', () => {
  let busy: FakeEngineProcess;
  let idle: FakeEngineProcess;
  let services: SpawnedProcess<{ port: number; pid: number }> | undefined;
  let base = '';

  beforeAll(async () => {
    const engine: FakeEngineOptions = {
      kind: 'vllm',
      models: ['m'],
      modelLoadMs: 0,
      slots: 2,
      decodeTokensPerSec: 200,
      prefillTokensPerSec: 50_000,
      kvCacheTokens: 100_000,
    };
    [busy, idle] = await Promise.all([startFakeEngine(engine), startFakeEngine(engine)]);
    services = await spawnTsProcess<{ port: number; pid: number }>(START_ENTRY, [], {
      env: {
        LOAD_BALANCER_PORT: '0',
        LOAD_BALANCER_HOST: '127.0.0.1',
        MONITOR_PORT: '0',
        REDIS_URL: '',
        REDIS_HOST: '',
        SCAN_HOSTS: `${busy.node},${idle.node}`,
        // One scan finds both; no rescan during the test (a hung /metrics would fail it).
        SCAN_INTERVAL: '60',
        LOAD_POLL_MS: '200',
        ROUTING_STRATEGY: 'LEAST_LOADED',
        LOG_LEVEL: 'warn',
        SHUTDOWN_GRACE_SECS: '0',
      },
      readyTimeoutMs: 60_000,
    });
    base = `http://127.0.0.1:${services.ready.port}`;
    await waitUntil(async () => (await enginesSeen()).every((n) => n.engine !== null), { timeoutMs: 30_000, what: 'both engines read' });
  }, 120_000);

  afterAll(async () => {
    await services?.stop();
    await Promise.all([busy?.stop(), idle?.stop()]);
  });

  async function enginesSeen(): Promise<EngineView[]> {
    const res = await fetch(`${base}/v1/nodes`);
    if (!res.ok) return [];
    const nodes = ((await res.json()) as { data: EngineView[] }).data;
    return nodes.length === 2 ? nodes : [];
  }

  async function routedNode(): Promise<string | null> {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
    });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    return res.headers.get('x-routed-node');
  }

  test('an outside client queues one engine: ai-lb sends the next requests to the other, and back once it drains', async () => {
    const outside = outsideClient(busy.url, OUTSIDE);
    try {
      await waitUntil(async () => ((await enginesSeen()).find((n) => n.node === busy.node)?.engine?.waiting ?? 0) > 0, {
        timeoutMs: 10_000,
        what: 'the outside queue in a reading',
      });
      const routed: (string | null)[] = [];
      for (let i = 0; i < 8; i++) routed.push(await routedNode());
      expect(routed).toEqual(Array(8).fill(idle.node));
      // ai-lb sent the busy engine nothing: every request it ran came from outside.
      const stats = await busy.stats();
      expect(stats.requests - stats.external.requests).toBe(0);
    } finally {
      await outside.stop();
    }
    await waitUntil(
      async () => {
        const engine = (await enginesSeen()).find((n) => n.node === busy.node)?.engine;
        return engine !== undefined && engine !== null && engine.running === 0 && engine.waiting === 0;
      },
      { timeoutMs: 10_000, what: 'the drained engine in a reading' },
    );
    // Equal load again: ties are shuffled, so both nodes get requests (all 20 on one: 2⁻¹⁹).
    const after = new Set<string | null>();
    for (let i = 0; i < 20 && after.size < 2; i++) after.add(await routedNode());
    expect(after).toEqual(new Set([busy.node, idle.node]));
  }, 60_000);

  test('load endpoints that hang or lie are ignored: routing goes on at once, on ai-lb’s own counts', async () => {
    await busy.setFault('hang');
    await idle.setFault('absurd');
    try {
      // Readings age out after 3 poll intervals; neither engine gets a new one.
      await waitUntil(async () => (await enginesSeen()).every((n) => n.engine === null), { timeoutMs: 10_000, what: 'no readings' });
      const started = performance.now();
      const routed = new Set<string | null>();
      for (let i = 0; i < 20 && routed.size < 2; i++) routed.add(await routedNode());
      expect(routed).toEqual(new Set([busy.node, idle.node]));
      // Each request is a few ms of fake decoding: nothing waited for a load endpoint.
      expect(performance.now() - started).toBeLessThan(5_000);
    } finally {
      await Promise.all([busy.setFault(null), idle.setFault(null)]);
    }
  }, 60_000);
});

/** A client that bypasses ai-lb: keeps `concurrency` requests on one engine until stopped (bounded by stop()). */
function outsideClient(url: string, load: { concurrency: number; maxTokens: number }): { stop(): Promise<void> } {
  const controller = new AbortController();
  let stopped = false;
  const loops = Array.from({ length: load.concurrency }, async () => {
    while (!stopped) {
      try {
        const res = await fetch(`${url}/v1/chat/completions`, {
          method: 'POST',
          signal: controller.signal,
          headers: { 'content-type': 'application/json', 'x-fake-external': '1' },
          body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'outside' }], max_tokens: load.maxTokens }),
        });
        await res.arrayBuffer();
      } catch {
        // Aborted by stop().
      }
    }
  });
  return {
    async stop() {
      stopped = true;
      controller.abort();
      await Promise.allSettled(loops);
    },
  };
}

describe.each(STORE_KINDS)('MODEL_ALIASES through the gateway, %s store', (kind) => {
  let ollamaLike: FakeLlmProcess;
  let vllmLike: FakeLlmProcess;
  useFakeServers(2, (servers) => ([ollamaLike, vllmLike] = servers));
  const ALIASES = { MODEL_ALIASES: 'llama3.1-8b=llama3.1:8b|meta-llama/Llama-3.1-8B-Instruct', ROUTING_STRATEGY: 'ROUND_ROBIN' };

  test('each node is sent the id it lists; x-selected-model names that id; /v1/models lists the alias', async () => {
    const h = await startGateway(kind, ALIASES);
    await h.putNodes(nodeState(ollamaLike.node, ['llama3.1:8b']), nodeState(vllmLike.node, ['meta-llama/Llama-3.1-8B-Instruct']));
    const idOf = new Map([
      [ollamaLike.node, 'llama3.1:8b'],
      [vllmLike.node, 'meta-llama/Llama-3.1-8B-Instruct'],
    ]);
    for (let i = 0; i < 4; i++) {
      const res = await h.post('/v1/chat/completions', chatBody('llama3.1-8b'));
      expect(res.status).toBe(200);
      const node = res.headers.get('x-routed-node')!;
      expect(res.headers.get('x-selected-model')).toBe(idOf.get(node));
      expect(((await res.json()) as { model: string }).model).toBe(idOf.get(node));
    }
    expect((await ollamaLike.stats()).byModel).toEqual({ 'llama3.1:8b': 2 });
    expect((await vllmLike.stats()).byModel).toEqual({ 'meta-llama/Llama-3.1-8B-Instruct': 2 });
    const models = (await (await h.get('/v1/models')).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toContain('llama3.1-8b');
  });

  test('translated requests (Anthropic Messages, Ollama’s API) are sent with each node’s own id too', async () => {
    const h = await startGateway(kind, ALIASES);
    await h.putNodes(nodeState(ollamaLike.node, ['llama3.1:8b']), nodeState(vllmLike.node, ['meta-llama/Llama-3.1-8B-Instruct']));
    for (let i = 0; i < 2; i++) {
      const message = await h.post('/v1/messages', { model: 'llama3.1-8b', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
      expect(message.status).toBe(200);
      expect(((await message.json()) as { type: string }).type).toBe('message');
      const chat = await h.post('/api/chat', { model: 'llama3.1-8b', stream: false, messages: [{ role: 'user', content: 'hi' }] });
      expect(chat.status).toBe(200);
      expect(((await chat.json()) as { done: boolean }).done).toBe(true);
    }
    expect((await ollamaLike.stats()).byModel).toEqual({ 'llama3.1:8b': 2 });
    expect((await vllmLike.stats()).byModel).toEqual({ 'meta-llama/Llama-3.1-8B-Instruct': 2 });
  });

  test('a failover re-sends the request with the next node’s own id', async () => {
    const h = await startGateway(kind, ALIASES);
    await h.putNodes(nodeState(ollamaLike.node, ['llama3.1:8b']), nodeState(vllmLike.node, ['meta-llama/Llama-3.1-8B-Instruct']));
    await ollamaLike.configure({ failMode: '500' });
    for (let i = 0; i < 2; i++) {
      const res = await h.post('/v1/chat/completions', chatBody('llama3.1-8b'));
      expect(res.status).toBe(200);
      expect(res.headers.get('x-routed-node')).toBe(vllmLike.node);
      expect(res.headers.get('x-selected-model')).toBe('meta-llama/Llama-3.1-8B-Instruct');
      await res.arrayBuffer();
    }
    // Round robin sent one of the two to the failing node first, with that node's id.
    expect((await ollamaLike.stats()).byModel).toEqual({ 'llama3.1:8b': 1 });
    expect((await vllmLike.stats()).byModel).toEqual({ 'meta-llama/Llama-3.1-8B-Instruct': 2 });
  });
});
