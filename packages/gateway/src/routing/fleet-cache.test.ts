/**
 * The fleet cache on real stores: freshness and the monitor as the store lists them,
 * engine load readings read per refresh (stale ones dropped), what routing candidates
 * carry, MODEL_ALIASES indexes, and records a store lost with its scan history.
 */
import { Redis } from 'ioredis';
import { describe, expect, inject, test } from 'vitest';
import { MemoryStateStore, RedisStateStore, type EngineLoadReading, type NodeState } from '@ai-lb/shared';
import { uniquePrefix } from '@ai-lb/testkit';
import { nodeState } from '../testing/gateway-harness.ts';
import { FleetCache, type FleetCacheOptions } from './fleet-cache.ts';

const T0 = 1_700_000_000_000;

function memoryFleet(options: Partial<FleetCacheOptions> = {}) {
  let now = T0;
  const clock = () => now;
  const store = new MemoryStateStore({ clock });
  const fleet = new FleetCache(store, { refreshMs: 3_600_000, clock, ...options });
  return { store, fleet, advance: (ms: number) => (now += ms), clock };
}

const reading = (node: string, over: Partial<EngineLoadReading> = {}): EngineLoadReading => ({
  node,
  running: 0,
  waiting: 0,
  kvCacheUsage: null,
  loadedModels: null,
  at: T0,
  ...over,
});

async function publish(store: MemoryStateStore | RedisStateStore, nodes: NodeState[], monitorId = 'mon-1', ttlMs = 1000) {
  await store.claimMonitorLease(monitorId, 60_000);
  const scan = await store.beginScan();
  for (const node of nodes) await store.putNode(node, ttlMs, { scan, keepMs: 60_000 });
  await store.completeScan(scan, monitorId);
}

describe('freshness and the monitor', () => {
  test('a record past its TTL with no newer scan is stale, still routed, and counted', async () => {
    const { store, fleet, advance } = memoryFleet();
    await publish(store, [nodeState('a:1', ['m'])]);
    await fleet.refresh();
    expect(fleet.record('a:1')?.freshness).toBe('fresh');
    expect(fleet.staleForMs('a:1')).toBeNull();
    await store.releaseMonitorLease('mon-1');
    advance(1500);
    await fleet.refresh();
    expect(fleet.record('a:1')?.freshness).toBe('stale');
    expect(fleet.staleForMs('a:1')).toBe(500);
    expect(fleet.healthyNodesFor('m').map((n) => n.node)).toEqual(['a:1']);
    expect(fleet.monitorStatus()).toMatchObject({ monitor: null, staleNodes: 1, lastScanAgeMs: 1500, authoritative: false });
  });

  test('authoritative only with a live monitor whose completed scan ran under its lease, and nodes', async () => {
    const { store, fleet, advance } = memoryFleet();
    await fleet.refresh();
    expect(fleet.isAuthoritative()).toBe(false);
    await publish(store, [nodeState('a:1', ['m'])]);
    await fleet.refresh();
    expect(fleet.isAuthoritative()).toBe(true);
    // The monitor is gone; another takes over: not authoritative until its own scan completes.
    await store.releaseMonitorLease('mon-1');
    advance(10);
    await store.claimMonitorLease('mon-2', 60_000);
    await fleet.refresh();
    expect(fleet.isAuthoritative()).toBe(false);
    await publish(store, [nodeState('a:1', ['m'])], 'mon-2');
    await fleet.refresh();
    expect(fleet.isAuthoritative()).toBe(true);
  });
});

describe('engine loads', () => {
  test('read with each refresh; a reading older than 3 poll intervals is dropped; LOAD_POLL_MS=0 reads none', async () => {
    const { store, fleet, advance } = memoryFleet({ loadPollMs: 100 });
    await publish(store, [nodeState('a:1', ['m']), nodeState('b:1', ['m'])]);
    await store.putEngineLoads([reading('a:1', { running: 3 }), reading('b:1', { running: 1, at: T0 - 301 })], 60_000);
    await fleet.refresh();
    expect(fleet.engineLoad('a:1')).toMatchObject({ running: 3 });
    expect(fleet.engineLoad('b:1')).toBeNull();
    advance(301);
    await fleet.refresh();
    expect(fleet.engineLoad('a:1')).toBeNull();

    const off = memoryFleet({ loadPollMs: 0 });
    await publish(off.store, [nodeState('a:1', ['m'])]);
    await off.store.putEngineLoads([reading('a:1', { running: 3 })], 60_000);
    await off.fleet.refresh();
    expect(off.fleet.engineLoad('a:1')).toBeNull();
  });

  test('routing candidates carry the outside load (engine running + waiting beyond ai-lb’s in-flight), warm, priority', async () => {
    const { store, fleet } = memoryFleet({ loadPollMs: 1000, priorities: new Map([['b:1', 0]]) });
    await publish(store, [nodeState('a:1', ['m'], { maxconn: 4 }), nodeState('b:1', ['m'], { kind: 'ollama', detectedMaxconn: 2 })]);
    const lease = {
      candidates: [{ node: 'a:1', maxconn: 4 }],
      order: 'in_order' as const,
      leaseId: 'l1',
      leaseMs: 60_000,
      probeLeaseMs: 1000,
    };
    await store.acquireSlot(lease);
    await store.putEngineLoads(
      [reading('a:1', { running: 4, waiting: 2 }), reading('b:1', { running: null, waiting: null, loadedModels: ['x'] })],
      60_000,
    );
    await fleet.refresh();
    const [a, b] = fleet.routingCandidates(['a:1', 'b:1'], 'm');
    expect(a).toMatchObject({ node: 'a:1', inflight: 1, warm: null, hints: { extraLoad: 5, slots: 4 } });
    expect(b).toMatchObject({ node: 'b:1', warm: false, priority: 0, slots: 2, hints: { extraLoad: 0, slots: 2 } });
  });
});

describe('a model load this process caused', () => {
  test('counts until a reading taken since: the node is warm for the model sent, cold for the others', async () => {
    const { store, fleet, advance } = memoryFleet({ loadPollMs: 1000, aliases: new Map([['llama', ['llama3.1:8b']]]) });
    await publish(store, [nodeState('a:1', ['x', 'y', 'llama3.1:8b']), nodeState('b:1', ['x', 'y'])], 'mon-1', 60_000);
    await store.putEngineLoads([reading('a:1', { loadedModels: ['x'] }), reading('b:1', { loadedModels: ['x'] })], 60_000);
    await fleet.refresh();
    const warm = (model: string) => fleet.routingCandidates(['a:1', 'b:1'], model).map((c) => c.warm);
    expect(warm('x')).toEqual([true, true]);
    advance(10);
    fleet.noteModelSent('a:1', 'x'); // loaded already: nothing changes
    fleet.noteModelSent('b:1', 'y');
    expect(warm('y')).toEqual([false, true]);
    expect(warm('x')).toEqual([true, false]);
    // An alias is the node's own id.
    fleet.noteModelSent('a:1', 'llama');
    expect(fleet.routingCandidates(['a:1'], 'llama')[0].warm).toBe(true);
    expect(warm('x')).toEqual([false, false]);
    // A reading older than the sends changes nothing; one taken since is the truth again.
    advance(100);
    await store.putEngineLoads([reading('b:1', { loadedModels: ['x'], at: T0 + 5 })], 60_000);
    await fleet.refresh();
    expect(warm('x')).toEqual([false, false]);
    await store.putEngineLoads([reading('a:1', { loadedModels: ['x', 'y'], at: T0 + 100 })], 60_000);
    await fleet.refresh();
    expect(warm('x')).toEqual([true, false]);
    expect(warm('y')).toEqual([true, true]);
  });

  test('without a newer reading it stops counting after as long as a reading is trusted (3 poll intervals)', async () => {
    const { store, fleet, advance } = memoryFleet({ loadPollMs: 1000 });
    await publish(store, [nodeState('b:1', ['x', 'y'])], 'mon-1', 60_000);
    await store.putEngineLoads([reading('b:1', { loadedModels: ['y'] })], 60_000);
    await fleet.refresh();
    fleet.noteModelSent('b:1', 'x');
    expect(fleet.routingCandidates(['b:1'], 'x')[0].warm).toBe(true);
    advance(2999);
    expect(fleet.routingCandidates(['b:1'], 'x')[0].warm).toBe(true);
    advance(1);
    expect(fleet.routingCandidates(['b:1'], 'x')[0].warm).toBe(false);
  });

  test('an engine that does not say what it has loaded (vLLM) is never marked', async () => {
    const { store, fleet } = memoryFleet({ loadPollMs: 1000 });
    await publish(store, [nodeState('b:1', ['x', 'y'])], 'mon-1', 60_000);
    await store.putEngineLoads([reading('b:1', { running: 1 })], 60_000);
    await fleet.refresh();
    fleet.noteModelSent('b:1', 'x');
    expect(fleet.routingCandidates(['b:1'], 'y')[0].warm).toBeNull();
  });
});

describe('MODEL_ALIASES', () => {
  const aliases = new Map([['llama-8b', ['llama3.1:8b', 'meta-llama/Llama-3.1-8B-Instruct']]]);

  test('an alias routes to the healthy nodes listing any of its ids, each sent its own id, and is listed once', async () => {
    const { store, fleet } = memoryFleet({ aliases, loadPollMs: 1000 });
    await publish(store, [
      nodeState('a:1', ['llama3.1:8b']),
      nodeState('b:1', ['meta-llama/Llama-3.1-8B-Instruct']),
      nodeState('c:1', ['llama3.1:8b'], { healthy: false }),
      nodeState('d:1', ['other']),
    ]);
    await store.putEngineLoads([reading('a:1', { loadedModels: ['llama3.1:8b'] })], 60_000);
    await fleet.refresh();
    expect(fleet.knownModel('llama-8b')).toBe('llama-8b');
    expect(fleet.knownModel('LLAMA-8B')).toBe('llama-8b');
    expect(fleet.isServedAlias('llama-8b')).toBe(true);
    expect(fleet.healthyNodesFor('llama-8b').map((n) => n.node)).toEqual(['a:1', 'b:1']);
    expect(fleet.modelFor('llama-8b', 'a:1')).toBe('llama3.1:8b');
    expect(fleet.modelFor('llama-8b', 'b:1')).toBe('meta-llama/Llama-3.1-8B-Instruct');
    expect(fleet.modelFor('other', 'd:1')).toBe('other');
    expect(fleet.routingCandidates(['a:1'], 'llama-8b')[0].warm).toBe(true);
    const ids = (JSON.parse(fleet.modelsJson()) as { data: Array<{ id: string; owned_by: string }> }).data;
    expect(ids.filter((m) => m.id === 'llama-8b')).toEqual([expect.objectContaining({ owned_by: 'ai-lb' })]);
    expect(fleet.aliasesOf(fleet.node('b:1')!)).toEqual(['llama-8b']);
  });

  test('an alias no node serves is unknown', async () => {
    const { store, fleet } = memoryFleet({ aliases });
    await publish(store, [nodeState('d:1', ['other'])]);
    await fleet.refresh();
    expect(fleet.knownModel('llama-8b')).toBeUndefined();
    expect(fleet.isServedAlias('llama-8b')).toBe(false);
  });
});

describe('a store that lost its data (Redis restarted empty)', () => {
  test('keeps the records it no longer lists, stale, until a scan completes', async () => {
    const prefix = uniquePrefix('fleet-cache');
    const store = new RedisStateStore({ url: inject('redisUrl'), keyPrefix: prefix });
    const redis = new Redis(inject('redisUrl'));
    const fleet = new FleetCache(store, { refreshMs: 3_600_000, clock: Date.now, staleLimitMs: 60_000 });
    try {
      await store.putNode(nodeState('a:1', ['m']), 60_000, { keepMs: 60_000 });
      await store.putNode(nodeState('b:1', ['m']), 60_000, { keepMs: 60_000 });
      await fleet.refresh();
      const keys = await redis.keys(`${prefix}*`);
      await redis.del(...keys);
      await fleet.refresh();
      expect(fleet.nodes().map((n) => n.node)).toEqual(['a:1', 'b:1']);
      expect(fleet.record('a:1')).toMatchObject({ freshness: 'stale', retained: true });
      expect(fleet.monitorStatus().staleNodes).toBe(2);
      // A monitor scans again and finds only b: a is gone.
      await publish(store, [nodeState('b:1', ['m'])], 'mon-1', 60_000);
      await fleet.refresh();
      expect(fleet.nodes().map((n) => n.node)).toEqual(['b:1']);
      expect(fleet.record('b:1')).toMatchObject({ freshness: 'fresh', retained: false });
    } finally {
      fleet.stop();
      await store.close();
      redis.disconnect();
    }
  });
});
