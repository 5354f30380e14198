import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { createStateStore, loadConfig, type StateStore } from '@ai-lb/shared';
import { spawnTsProcess, startFakeLlmServer, uniquePrefix, type FakeLlmProcess, type SpawnedProcess } from '@ai-lb/testkit';
import { chatBody, eventually, nodeState } from './testing/gateway-harness.ts';
import { GATEWAY_ENTRY as MAIN } from './testing/gateway-processes.ts';

let a: FakeLlmProcess;
let b: FakeLlmProcess;
let first: FakeLlmProcess;
let second: FakeLlmProcess;

beforeAll(async () => {
  [a, b] = await Promise.all([startFakeLlmServer({ models: ['m1'] }), startFakeLlmServer({ models: ['m1'] })]);
  [first, second] = [a, b].sort((x, y) => (x.node < y.node ? -1 : 1));
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

const post = (port: number, path: string, body: unknown) =>
  fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const get = async <T>(port: number, path: string) => (await (await fetch(`http://127.0.0.1:${port}${path}`)).json()) as T;
type NodesBody = { data: Array<{ node: string; inflight: number; circuit: string; failures: number }> };

describe('two gateway processes on one Redis', () => {
  let gw1: SpawnedProcess<{ port: number }>;
  let gw2: SpawnedProcess<{ port: number }>;
  let store: StateStore;

  beforeAll(async () => {
    const env = {
      LOAD_BALANCER_PORT: '0',
      LOAD_BALANCER_HOST: '127.0.0.1',
      REDIS_URL: inject('redisUrl'),
      REDIS_KEY_PREFIX: uniquePrefix('replicas'),
      ROUTING_STRATEGY: 'ROUND_ROBIN',
      MAX_RETRIES: '0',
      CIRCUIT_BREAKER_THRESHOLD: '2',
      CIRCUIT_BREAKER_TTL_SECS: '60',
      REQUEST_TIMEOUT_SECS: '5',
      SHUTDOWN_GRACE_SECS: '5',
    };
    store = createStateStore(loadConfig(env));
    await store.putNode(nodeState(a.node, ['m1', 'fault-slow-800', 'fault-slow-3000'], { maxconn: 1 }), 60_000);
    await store.putNode(nodeState(b.node, ['m1', 'fault-slow-800', 'fault-slow-3000'], { maxconn: 1 }), 60_000);
    [gw1, gw2] = await Promise.all([spawnTsProcess(MAIN, [], { env }), spawnTsProcess(MAIN, [], { env })]);
    for (const gw of [gw1, gw2]) {
      await eventually(async () => (await get<NodesBody>(gw.ready.port, '/v1/nodes')).data.length === 2, 5000);
    }
  });
  afterAll(async () => {
    await Promise.all([gw1?.stop(), gw2?.stop()]);
    await store?.close();
  });

  test('they share the round-robin position', async () => {
    const nodes: string[] = [];
    for (const gw of [gw1, gw2, gw1, gw2, gw1, gw2]) {
      const res = await post(gw.ready.port, '/v1/chat/completions', chatBody('m1'));
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      nodes.push(res.headers.get('x-routed-node')!);
    }
    expect(nodes).toEqual([first.node, second.node, first.node, second.node, first.node, second.node]);
  });

  test('they share in-flight counts and caps', async () => {
    // Held for 3 s: on a loaded machine a tsx process can take most of a second per /v1/nodes,
    // and the hold must outlast the polls that look for it.
    const holding = post(gw1.ready.port, `/v1/chat/completions?node=${a.node}`, chatBody('fault-slow-3000'));
    await eventually(async () => (await get<NodesBody>(gw2.ready.port, '/v1/nodes')).data.find((n) => n.node === a.node)!.inflight === 1);
    // a's single slot is taken through gw1: gw2 must not put a second request on it.
    const rejected = await post(gw2.ready.port, `/v1/chat/completions?node=${a.node}`, chatBody('fault-slow-3000'));
    expect(rejected.status).toBe(429);
    await rejected.arrayBuffer();
    expect((await holding).status).toBe(200);
    await eventually(async () => (await get<NodesBody>(gw2.ready.port, '/v1/nodes')).data.every((n) => n.inflight === 0));
  });

  test('they share circuit state', async () => {
    await a.configure({ failMode: '500' });
    try {
      for (let i = 0; i < 2; i++) {
        const res = await post(gw1.ready.port, `/v1/chat/completions?node=${a.node}`, chatBody('m1'));
        expect(res.status).toBe(502);
        await res.arrayBuffer();
      }
      const seen = (await a.stats()).requests;
      const circuitOnGw2 = async () => (await get<NodesBody>(gw2.ready.port, '/v1/nodes')).data.find((n) => n.node === a.node)!;
      expect(await circuitOnGw2()).toMatchObject({ circuit: 'open', failures: 2 });
      // gw2 never sends to a while its circuit is open, though a is first in its rotation half the time.
      for (let i = 0; i < 4; i++) {
        const res = await post(gw2.ready.port, '/v1/chat/completions', chatBody('m1'));
        expect(res.status).toBe(200);
        expect(res.headers.get('x-routed-node')).toBe(b.node);
        await res.arrayBuffer();
      }
      expect((await a.stats()).requests).toBe(seen);
    } finally {
      await a.configure({ failMode: null });
    }
  });

  test('SIGTERM lets an in-flight request finish, then the process exits 0', async () => {
    const inFlight = post(gw2.ready.port, `/v1/chat/completions?node=${b.node}`, chatBody('fault-slow-800'));
    await eventually(async () => (await b.stats()).inflight === 1);
    const exited = new Promise<number | null>((resolve) => gw2.child.once('exit', (code) => resolve(code)));
    gw2.child.kill('SIGTERM');
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { choices: unknown[] }).choices).toHaveLength(1);
    expect(await exited).toBe(0);
  });
});
