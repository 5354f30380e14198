/**
 * The surface probe: the verdict rule on each real server's way of refusing a route (pure),
 * then against the fake of every kind (separate processes, real sockets): it learns exactly
 * the surfaces the kind serves, asks once per node until kind, version or models change,
 * and falls back to the kind's usual surfaces when a route check cannot tell.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { API_SURFACES, MemoryStateStore, type ApiSurface, type ServerKind } from '@ai-lb/shared';
import { fakeKindSurfaces, startFakeLlmServer, type FakeLlmProcess } from '@ai-lb/testkit';
import { createProbeClient, type ProbeClient } from './probe-client.ts';
import { probeTarget } from './probe-node.ts';
import { KIND_DEFAULT_SURFACES, learnSurfaces, REPROBE_AFTER_MS, routeVerdict } from './surfaces.ts';
import type { ProbeError } from './probe-error.ts';
import { startMonitor } from '../start-monitor.ts';
import { nodesById, testConfig } from '../testing/monitor-test-env.ts';
import type { ScanTarget } from '../scan/targets.ts';

const KINDS: readonly Exclude<ServerKind, never>[] = ['openai', 'vllm', 'llamacpp', 'ollama', 'lmstudio', 'sglang'];
const BASELINE = '/v1/ai-lb-probe-no-such-route';
const inOrder = (surfaces: Iterable<ApiSurface>) => API_SURFACES.filter((s) => new Set(surfaces).has(s));

describe('route verdicts on the real servers’ refusals', () => {
  test.each([
    [
      'vLLM / SGLang (FastAPI)',
      { status: 404, body: '{"detail":"Not Found"}' },
      { status: 400, body: '{"error":{"message":"Field required","code":400}}' },
    ],
    [
      'llama.cpp',
      { status: 404, body: '{"error":{"message":"File Not Found","type":"not_found_error","code":404}}' },
      { status: 500, body: '{"error":{"code":500,"message":"\'messages\' is required"}}' },
    ],
    ['Ollama (gin)', { status: 404, body: '404 page not found' }, { status: 400, body: '{"error":"model is required"}' }],
    [
      'LM Studio (200 for every unknown route)',
      { status: 200, body: `{"error":"Unexpected endpoint or method. (POST ${BASELINE})"}` },
      { status: 400, body: '{"error":"\'messages\' field is required"}' },
    ],
  ])('%s: its unknown-route answer is absent, a handler’s rejection of {} is present', (_name, refusal, rejection) => {
    const missing = { ...refusal, body: refusal.body.replace(BASELINE, '/v1/messages') };
    expect(routeVerdict(missing, '/v1/messages', refusal)).toBe('absent');
    expect(routeVerdict(rejection, '/v1/messages', refusal)).toBe('present');
  });

  test('a handler’s own 404 (no such model, no such response id) is a route that exists', () => {
    const gin = { status: 404, body: '404 page not found' };
    expect(routeVerdict({ status: 404, body: '{"error":"model \'\' not found"}' }, '/api/chat', gin)).toBe('present');
    const fastapi = { status: 404, body: '{"detail":"Not Found"}' };
    expect(
      routeVerdict(
        { status: 404, body: '{"error":{"message":"Response with id \'resp_x\' not found."}}' },
        '/v1/responses/resp_x',
        fastapi,
      ),
    ).toBe('present');
  });

  test('405/501 are absent; auth walls and answers that never came cannot tell', () => {
    const fastapi = { status: 404, body: '{"detail":"Not Found"}' };
    expect(routeVerdict({ status: 405, body: '{"detail":"Method Not Allowed"}' }, '/v1/score', fastapi)).toBe('absent');
    expect(routeVerdict({ status: 501, body: 'not implemented' }, '/v1/score', fastapi)).toBe('absent');
    expect(routeVerdict({ status: 401, body: '{"error":"Invalid API Key"}' }, '/v1/score', fastapi)).toBe('unknown');
    expect(routeVerdict(null, '/v1/score', fastapi)).toBe('unknown');
  });

  test('request ids and timestamps in an unknown-route answer do not make it look like a route', () => {
    const baseline = { status: 404, body: `{"timestamp":1712345678901,"path":"${BASELINE}","error":"Not Found"}` };
    expect(
      routeVerdict({ status: 404, body: '{"timestamp":1712345679999,"path":"/v1/rerank","error":"Not Found"}' }, '/v1/rerank', baseline),
    ).toBe('absent');
  });
});

describe('against the fake of every kind', () => {
  const fakes = {} as Record<ServerKind, FakeLlmProcess>;
  let client: ProbeClient;

  // One at a time: six tsx processes starting at once on a busy two-core machine miss their ready timeout.
  beforeAll(async () => {
    for (const kind of KINDS) fakes[kind] = await startFakeLlmServer({ kind, models: [`${kind}-model`] });
    client = createProbeClient({ timeoutMs: 5_000 });
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    await Promise.all(Object.values(fakes).map((fake) => fake.stop()));
  });

  const target = (fake: FakeLlmProcess): ScanTarget => ({ host: '127.0.0.1', port: fake.port, node: fake.node });

  test.each(KINDS)('%s: the probe learns exactly the surfaces the server serves, without one inference request', async (kind) => {
    const fake = fakes[kind];
    await fake.reset();
    const outcome = await probeTarget(client, target(fake));
    expect(outcome.status).toBe('node');
    const facts = (outcome as Extract<typeof outcome, { status: 'node' }>).facts;
    expect(facts.kind).toBe(kind);
    expect(facts.surfaces).toEqual(inOrder(fakeKindSurfaces(kind)));
    expect(outcome.warnings).toEqual([]);
    expect((await fake.stats()).requests).toBe(0); // every route check was refused or rejected as invalid
  });

  test('asked once: the next scan reuses what was learned; a changed model list asks again', async () => {
    const fake = fakes.vllm;
    const checks = async () => (await fake.stats()).byPath[BASELINE] ?? 0;
    await probeTarget(client, target(fake)); // learned (maybe already by the test above)
    await fake.reset();
    await probeTarget(client, target(fake));
    expect(await checks()).toBe(0);
    await fake.configure({ models: ['vllm-model', 'another-model'] });
    const outcome = await probeTarget(client, target(fake));
    expect(await checks()).toBe(2); // the POST and GET baselines, once
    expect((outcome as Extract<typeof outcome, { status: 'node' }>).facts.surfaces).toEqual(inOrder(fakeKindSurfaces('vllm')));
    await fake.configure({ models: ['vllm-model'] });
  });

  test('a server without a version is asked again after REPROBE_AFTER_MS', async () => {
    const fake = fakes.lmstudio;
    let now = 1_000_000;
    const context = { client, target: target(fake), warn: () => undefined, deadline: new AbortController().signal };
    const facts = { kind: 'lmstudio' as const, models: ['x'] };
    await learnSurfaces(context, facts, () => now);
    await fake.reset();
    await learnSurfaces(context, facts, () => now + REPROBE_AFTER_MS - 1);
    expect((await fake.stats()).byPath[BASELINE]).toBeUndefined();
    now += REPROBE_AFTER_MS;
    expect(await learnSurfaces(context, facts, () => now)).toEqual(inOrder(fakeKindSurfaces('lmstudio')));
    expect((await fake.stats()).byPath[BASELINE]).toBe(2);
  });

  test('the monitor records the surfaces in the node state', async () => {
    const store = new MemoryStateStore();
    const config = testConfig({ SCAN_HOSTS: `${fakes.ollama.node},${fakes.sglang.node}` });
    const monitor = await startMonitor({ config, store, schedule: false, listen: false });
    try {
      await monitor.scanOnce();
      const nodes = await nodesById(store);
      expect(nodes[fakes.ollama.node]?.surfaces).toEqual(inOrder(fakeKindSurfaces('ollama')));
      expect(nodes[fakes.sglang.node]?.surfaces).toEqual(inOrder(fakeKindSurfaces('sglang')));
    } finally {
      await monitor.stop();
      await store.close();
    }
  });
});

describe('when the routes cannot tell', () => {
  let server: Server;
  let port: number;
  let client: ProbeClient;
  const seen: string[] = [];

  beforeAll(async () => {
    // A server behind an API-key wall the monitor has no key for: only /v1/models is public (llama.cpp does this).
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/models')
        return void res.end(JSON.stringify({ object: 'list', data: [{ id: 'm', object: 'model', owned_by: 'me' }] }));
      res.statusCode = 401;
      res.end(JSON.stringify({ error: { message: 'Invalid API Key', type: 'authentication_error' } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    client = createProbeClient({ timeoutMs: 2_000 });
  });

  afterEach(() => {
    seen.length = 0;
  });

  afterAll(async () => {
    await client?.close();
    await new Promise((resolve) => server.close(resolve));
  });

  test('the kind’s usual surfaces stand in, nothing is cached, and the next scan asks again', async () => {
    const where: ScanTarget = { host: '127.0.0.1', port, node: `127.0.0.1:${port}` };
    const first = await probeTarget(client, where);
    expect((first as Extract<typeof first, { status: 'node' }>).facts.surfaces).toEqual(KIND_DEFAULT_SURFACES.openai);
    const baselines = () => seen.filter((line) => line.endsWith(BASELINE)).length;
    expect(baselines()).toBe(2);
    await probeTarget(client, where);
    expect(baselines()).toBe(4);
  });

  test('a route check that times out is a warning, and that surface falls back to the kind', async () => {
    const warnings: ProbeError[] = [];
    const slow = createServer((req, res) => {
      if (req.url === '/v1/score') return; // never answers
      res.statusCode = req.url === '/v1/chat/completions' ? 400 : 404;
      res.end(res.statusCode === 400 ? '{"error":"messages required"}' : '{"detail":"Not Found"}');
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const slowPort = (slow.address() as AddressInfo).port;
    const quick = createProbeClient({ timeoutMs: 1_500 }); // short, but not so short that a loaded machine misses the baseline
    try {
      const context = {
        client: quick,
        target: { host: '127.0.0.1', port: slowPort, node: `127.0.0.1:${slowPort}` },
        warn: (e: ProbeError) => warnings.push(e),
        deadline: new AbortController().signal,
      };
      const surfaces = await learnSurfaces(context, { kind: 'sglang', models: ['m'] });
      expect(surfaces).toEqual(['chat_completions', 'score']); // score: unknown -> SGLang serves it
      expect(warnings.map((w) => w.reason)).toEqual(['timeout']);
    } finally {
      await quick.close();
      slow.closeAllConnections();
      await new Promise((resolve) => slow.close(resolve));
    }
  });
});
