/**
 * Three gateway processes behind one real Redis share caps, leases, the wait queue and
 * sticky sessions. Upstreams are fake-server processes; node records are written
 * straight into Redis (the monitor's job), so routing is deterministic.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, inject, onTestFinished, test } from 'vitest';
import { Redis } from 'ioredis';
import { createStateStore, loadConfig, redisKeys, type StateStore } from '@ai-lb/shared';
import { startFakeLlmServer, uniquePrefix, waitUntil, type FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, nodeState } from './testing/gateway-harness.ts';
import {
  getJson,
  getText,
  inflightVia,
  metricValue,
  postChat,
  replicaEnv,
  startReplicas,
  stopAll,
  type GatewayProcess,
  type NodesBody,
} from './testing/gateway-processes.ts';

let capped: FakeLlmProcess; // maxconn 4, every answer takes 200 ms; also a sticky-session node
let single: FakeLlmProcess; // maxconn 1: queue tests
let pair: FakeLlmProcess; // maxconn 2: the SIGKILL test; also a sticky-session node
let wide: FakeLlmProcess; // maxconn 32, answers take 100 ms: reserves
let replicas: GatewayProcess[] = [];
let store: StateStore;
const prefix = uniquePrefix('replicas');

beforeAll(async () => {
  [capped, single, pair, wide] = await Promise.all([
    startFakeLlmServer({ models: ['cap-m', 'sticky-m'], latencyMs: 200 }),
    startFakeLlmServer({ models: ['fault-slow-250'] }),
    startFakeLlmServer({ models: ['m1', 'sticky-m'] }),
    startFakeLlmServer({ models: ['wide-m'], latencyMs: 100 }),
  ]);
  const env = replicaEnv(inject('redisUrl'), prefix, {
    ROUTING_STRATEGY: 'ROUND_ROBIN',
    QUEUE_TIMEOUT_MS: '1500',
    RETRY_AFTER_SECS: '3',
    SLOT_LEASE_SECS: '5',
    STICKY_SESSIONS: 'true',
    MAX_RETRIES: '0',
    REQUEST_TIMEOUT_SECS: '10',
  });
  store = createStateStore(loadConfig(env));
  // sticky-m: a slot is given back just after the answer went out, so the next request of
  // a session may find a maxconn-1 node still full and move; these caps leave room.
  await store.putNode(nodeState(capped.node, ['cap-m', 'sticky-m'], { maxconn: 4 }), 120_000);
  await store.putNode(nodeState(single.node, ['fault-slow-250', 'fault-slow-800'], { maxconn: 1 }), 120_000);
  await store.putNode(nodeState(pair.node, ['m1', 'sticky-m', 'fault-stall-stream'], { maxconn: 2 }), 120_000);
  await store.putNode(nodeState(wide.node, ['wide-m'], { maxconn: 32 }), 120_000);
  // The replica the SIGKILL test kills leases for 1 s; the others for 5 s, so a CPU-starved
  // test machine cannot make their leases lapse mid-request.
  replicas = (await Promise.all([startReplicas(2, env), startReplicas(1, { ...env, SLOT_LEASE_SECS: '1' })])).flat();
  for (const gw of replicas) {
    await waitUntil(async () => (await getJson<NodesBody>(gw, '/v1/nodes')).body.data.length === 4, {
      timeoutMs: 8000,
      what: 'fleet seen',
    });
  }
}, 60_000);

afterAll(async () => {
  await stopAll(replicas);
  await store?.close();
  await Promise.all([capped?.stop(), single?.stop(), pair?.stop(), wide?.stop()]);
});

beforeEach(async () => {
  await Promise.all([capped, single, pair, wide].map((f) => f.reset()));
});

describe('three gateway replicas on one Redis', () => {
  test('fleet-wide cap: 50 clients over 3 replicas never put more than maxconn 4 on the node', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const res = await postChat(replicas[i % 3], chatBody('cap-m'));
        const body = (await res.json()) as { error?: { code: string } };
        if (res.status === 429) {
          expect(res.headers.get('retry-after')).toBe('3');
          expect(res.headers.get('x-capacity-state')).toBe('full');
          expect(body.error?.code).toBe('capacity_exhausted');
        }
        return res.status;
      }),
    );
    const ok = statuses.filter((s) => s === 200).length;
    const rejected = statuses.filter((s) => s === 429).length;
    const stats = await capped.stats();
    if (stats.peakInflight > 4) for (const gw of replicas) console.log(gw.stderr());
    // At most the cap; exactly the cap whenever the four leases' requests overlap upstream,
    // which a starved machine does not promise (a lease is held before and after its request).
    expect(stats.peakInflight).toBeLessThanOrEqual(4);
    expect(stats.peakInflight).toBeGreaterThanOrEqual(2);
    expect(ok + rejected).toBe(50); // nothing lost, nothing else
    expect(stats.requests).toBe(ok); // the node saw exactly the successes
    // 4 slots × 200 ms within a 1.5 s queue: some wait and get in, the rest are turned away.
    expect(ok).toBeGreaterThan(8);
    expect(rejected).toBeGreaterThan(0);
    for (const gw of replicas) await waitUntil(async () => (await inflightVia(gw, capped.node)) === 0, { what: 'slots released' });
  }, 20_000);

  test('reserves: a node far from its cap is served from slots leased in blocks, and 3 replicas never put more than its maxconn 32 on it', async () => {
    const placements = async (via: string) => {
      let sum = 0;
      for (const gw of replicas) sum += metricValue(await getText(gw, '/metrics'), `ai_lb_slot_placements_total{via="${via}"}`) ?? 0;
      return sum;
    };
    const [reservedBefore, storeBefore] = [await placements('reserve'), await placements('store')];
    const wave = async (clients: number) =>
      Promise.all(
        Array.from({ length: clients }, async (_, i) => {
          const res = await postChat(replicas[i % 3], chatBody('wide-m'));
          await res.arrayBuffer();
          return res.status;
        }),
      );
    const statuses: number[] = [];
    // Far from the cap (9 at a time on 32): after the first wave finds no reserve and blocks
    // are leased, each replica's three clients take reserved slots. How many is a matter of
    // timing: nearly all on a quiet machine, fewer on a starved one; more than a third holds
    // even then, and no reserve at all fails it.
    for (let i = 0; i < 12; i++) statuses.push(...(await wave(9)));
    const reserved = (await placements('reserve')) - reservedBefore;
    expect(reserved).toBeGreaterThan(36);
    // Past the cap (45 at a time): reserves stop being granted near it, some clients queue,
    // and the node never holds more than its maxconn.
    for (let i = 0; i < 2; i++) statuses.push(...(await wave(45)));
    const stats = await wide.stats();
    if (stats.peakInflight > 32) for (const gw of replicas) console.log(gw.stderr());
    expect(stats.peakInflight).toBeLessThanOrEqual(32);
    expect(statuses.filter((s) => s === 200).length).toBe(198);
    expect(stats.requests).toBe(198);
    const placed = (await placements('reserve')) - reservedBefore + (await placements('store')) - storeBefore;
    expect(placed).toBe(198);
    // Idle reserves go back within a report interval or two: the node's slots are free again.
    const redis = new Redis(inject('redisUrl'));
    onTestFinished(() => void redis.quit());
    const slotsKey = redisKeys(prefix).slots(wide.node);
    await waitUntil(async () => (await redis.zcount(slotsKey, Date.now() - 1000, '+inf')) === 0, { what: 'reserves given back' });
    for (const gw of replicas) expect(metricValue(await getText(gw, '/metrics'), `ai_lb_reserved_idle_slots{node="${wide.node}"}`)).toBe(0);
  }, 30_000);

  test('sticky sessions hold across replicas', async () => {
    const nodesOf = async (session: string) => {
      const seen: string[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await postChat(replicas[i % 3], chatBody('sticky-m'), { headers: { 'x-session-id': session } });
        expect(res.status).toBe(200);
        await res.arrayBuffer();
        seen.push(res.headers.get('x-routed-node')!);
      }
      return seen;
    };
    // ROUND_ROBIN would alternate between the two nodes; the session pins every request.
    for (const session of ['s-1', 's-2', 's-3']) expect(new Set(await nodesOf(session)).size).toBe(1);
    const unsticky: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await postChat(replicas[i % 3], chatBody('sticky-m'));
      await res.arrayBuffer();
      unsticky.push(res.headers.get('x-routed-node')!);
    }
    expect(new Set(unsticky).size).toBe(2);
  }, 20_000);

  test('queue: first come, first served across replicas', async () => {
    const redis = new Redis(inject('redisUrl'));
    onTestFinished(() => void redis.quit());
    const placed = async () => {
      let sum = 0;
      for (const gw of replicas) sum += metricValue(await getText(gw, '/metrics'), 'ai_lb_queue_wait_seconds_count{result="placed"}') ?? 0;
      return sum;
    };
    const placedBefore = await placed();
    /** Requests that reached the upstream or hold a ticket in the shared line: the ones that have arrived. */
    const arrived = async () => (await single.stats()).requests + (await redis.zcard(redisKeys(prefix).queue('fault-slow-250')));
    // Arrival order 0..3, each on another replica than the one before, each sent once the
    // one before holds the slot or waits in line.
    const responses: Promise<Response>[] = [];
    for (let i = 0; i < 4; i++) {
      responses.push(postChat(replicas[i % 3], chatBody('fault-slow-250'), { headers: { 'x-request-id': `fcfs-${i}` } }));
      await waitUntil(async () => (await arrived()) >= i + 1, { what: `request ${i} arrived` });
    }
    const statuses = await Promise.all(
      responses.map(async (pending) => {
        const res = await pending;
        await res.arrayBuffer();
        return res.status;
      }),
    );
    expect(statuses).toEqual([200, 200, 200, 200]);
    const stats = await single.stats();
    // The upstream served them one at a time, in arrival order, and the later ones had waited.
    expect(stats.requestIds).toEqual(['fcfs-0', 'fcfs-1', 'fcfs-2', 'fcfs-3']);
    expect(stats.peakInflight).toBe(1);
    expect((await placed()) - placedBefore).toBeGreaterThanOrEqual(1);
  }, 20_000);

  test('queue: a client that gives up leaves the line at once and is never sent upstream', async () => {
    const holder = postChat(replicas[0], chatBody('fault-slow-800'));
    await waitUntil(async () => (await single.stats()).inflight === 1, { what: 'the slot held' });
    const controller = new AbortController();
    const abandoned = postChat(replicas[1], chatBody('fault-slow-800'), { signal: controller.signal }).catch((e: Error) => e.name);
    await waitUntil(async () => metricValue(await getText(replicas[1], '/metrics'), 'ai_lb_queue_length') === 1, { what: 'one waiting' });
    const redis = new Redis(inject('redisUrl'));
    onTestFinished(() => void redis.quit());
    const sharedQueue = () => redis.zcard(redisKeys(prefix).queue('fault-slow-800'));
    expect(await sharedQueue()).toBe(1);
    controller.abort();
    expect(await abandoned).toBe('AbortError');
    // Out of the shared line at once, not when its ticket would have expired (5 s).
    await waitUntil(async () => (await sharedQueue()) === 0, { timeoutMs: 300, intervalMs: 10, what: 'the shared line empty' });
    expect(metricValue(await getText(replicas[1], '/metrics'), 'ai_lb_queue_length')).toBe(0);
    // Had the abandoned ticket stayed in the shared queue, this one would wait behind it
    // for its ticket TTL (SLOT_LEASE_SECS); it gets the slot as soon as the holder is done.
    const startedAt = Date.now();
    const next = await postChat(replicas[2], chatBody('fault-slow-250'));
    expect(next.status).toBe(200);
    await next.arrayBuffer();
    expect((await holder).status).toBe(200);
    expect(Date.now() - startedAt).toBeLessThan(1400);
    const stats = await single.stats();
    expect(stats.requests).toBe(2);
    expect(stats.peakInflight).toBe(1);
    const metrics = await getText(replicas[1], '/metrics');
    expect(metricValue(metrics, 'ai_lb_queue_wait_seconds_count{result="aborted"}')).toBe(1);
    for (const gw of replicas) await waitUntil(async () => (await inflightVia(gw, single.node)) === 0, { what: 'slots released' });
  }, 20_000);

  test('a replica killed with SIGKILL mid-stream: its slots come back within SLOT_LEASE_SECS, the others carry on', async () => {
    const [alive1, alive2, doomed] = replicas;
    const streams = [0, 1].map(() => postChat(doomed, chatBody('fault-stall-stream', { stream: true })));
    // The bodies stay unread and open: the streams are mid-way when the replica dies.
    for (const res of await Promise.all(streams)) expect(res.status).toBe(200);
    await waitUntil(async () => (await inflightVia(alive1, pair.node)) === 2, { what: 'both streams holding slots' });
    const full = await postChat(alive1, chatBody('m1'), { query: `?node=${pair.node}` });
    expect(full.status).toBe(429);
    await full.arrayBuffer();

    doomed.child.kill('SIGKILL');
    const killedAt = Date.now();
    // Nobody released those leases: they must run out by themselves (1 s lease, renewed every ~333 ms).
    expect(await inflightVia(alive1, pair.node)).toBe(2);
    await waitUntil(async () => (await inflightVia(alive2, pair.node)) === 0, { timeoutMs: 3000, intervalMs: 50, what: 'leases run out' });
    const freedAfterMs = Date.now() - killedAt;
    expect(freedAfterMs).toBeLessThan(1500);
    for (const gw of [alive1, alive2, alive1, alive2]) {
      const res = await postChat(gw, chatBody('m1'));
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    console.log(`SIGKILLed replica's 2 slots freed after ${freedAfterMs} ms (SLOT_LEASE_SECS=1)`);
  }, 20_000);
});
