import { freePort, startRedis, uniquePrefix, type RedisServer } from '@ai-lb/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { createLogger, silentLogger } from '../logger.ts';
import { acquire, LONG_MS, nodeState, release, sleep } from './contract-harness.ts';
import { reading } from './engine-load.contract.ts';
import { RedisStateStore } from './redis-state-store.ts';
import { ResilientStateStore } from './resilient-state-store.ts';
import { describeStateStoreContract } from './state-store.contract.ts';

const quiet = silentLogger;
const redisUrl = inject('redisUrl');
const usedPrefixes: string[] = [];

afterAll(async () => {
  const admin = new Redis(redisUrl);
  for (const p of usedPrefixes) {
    const keys = await admin.keys(`${p}*`);
    if (keys.length > 0) await admin.del(...keys);
  }
  await admin.quit();
});

// While Redis is up, the wrapper must be indistinguishable from the Redis store.
describeStateStoreContract('resilient, Redis up', async () => {
  const keyPrefix = uniquePrefix('resilient');
  usedPrefixes.push(keyPrefix);
  const opened: ResilientStateStore[] = [];
  const open = async () => {
    const store = new ResilientStateStore({ remote: new RedisStateStore({ url: redisUrl, keyPrefix, log: quiet }), log: quiet });
    opened.push(store);
    await store.ping();
    return store;
  };
  const store = await open();
  return {
    store,
    peer: open,
    advance: sleep,
    listening: (s) => (s as ResilientStateStore).subscriptionsReady(),
    close: async () => {
      await Promise.all(opened.map((s) => s.close()));
      expect(opened.every((s) => !s.health().degraded)).toBe(true);
    },
  };
});

describe('ResilientStateStore when Redis goes away and comes back', () => {
  let server: RedisServer | undefined;
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
    await server?.stop();
    server = undefined;
  });

  async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 8000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  it('serves the last fleet and accounts locally while down, then goes back to Redis by itself', async () => {
    server = await startRedis();
    const keyPrefix = 'resilient:';
    const monitor = new RedisStateStore({ url: server.url, keyPrefix, log: quiet });
    const logged: Record<string, unknown>[] = [];
    const store = new ResilientStateStore({
      remote: new RedisStateStore({ url: server.url, keyPrefix, log: quiet }),
      recheckMs: 50,
      log: createLogger({ destination: { write: (line: string) => logged.push(JSON.parse(line)) } }),
    });
    closers.push(
      () => monitor.close(),
      () => store.close(),
    );
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    closers.push(async () => process.off('unhandledRejection', onUnhandled));
    const A = [{ node: 'a:1', maxconn: 2 }];

    await monitor.putNode(nodeState('a:1', { maxconn: 2 }), LONG_MS);
    await monitor.putNode(nodeState('b:1'), LONG_MS);
    const fleet = await store.listNodes();
    const remoteLease = await acquire(store, A);
    expect(remoteLease.node).toBe('a:1');

    await server.stop();
    // The fleet as last read; the outage is noticed on the first failing call.
    expect(await store.listNodes()).toEqual(fleet);
    const down = store.health();
    expect(down).toMatchObject({ degraded: true, reason: expect.stringMatching(/^state store unavailable: /) });
    expect(down.remoteFailures).toBeGreaterThanOrEqual(1);
    await store.ping();

    // Local accounting: the cap holds within this replica (the Redis lease is not visible).
    const local1 = await acquire(store, A);
    const local2 = await acquire(store, A);
    expect([local1.node, local2.node]).toEqual(['a:1', 'a:1']);
    expect(await acquire(store, A)).toMatchObject({ node: null, reason: 'capacity' });
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 2 });
    // Local circuit breaker: three failures on b open it for this replica.
    for (let i = 0; i < 3; i++) await release(store, await acquire(store, [{ node: 'b:1', maxconn: 0 }]), 'failure');
    expect(await acquire(store, [{ node: 'b:1', maxconn: 0 }])).toMatchObject({ node: null, reason: 'circuit' });
    // A lease taken in Redis before the outage: its release must not throw.
    await release(store, remoteLease, 'success');
    // A monitor in this process keeps the local view fresh.
    await store.markNodeUnhealthy('b:1', 'probe failed', 5);
    expect((await store.listNodes()).find((n) => n.node === 'b:1')?.healthy).toBe(false);

    server = await startRedis({ port: server.port });
    await until(() => store.health().degraded === false, 'back on Redis');
    // The failure count is since start: recovery does not reset it.
    expect(store.health()).toEqual({ degraded: false, reason: null, remoteFailures: down.remoteFailures });
    // One line when it degrades (with the Redis error) and one when it is back.
    expect(logged.map(({ level, msg, reason }) => ({ level, msg, reason }))).toEqual([
      { level: 'warn', msg: 'state degraded, serving on local state', reason: expect.stringMatching(/^state store unavailable/) },
      { level: 'info', msg: 'state back on Redis', reason: 'Redis answered again' },
    ]);
    // A fresh Redis (no persistence): the fleet now comes from it again, i.e. empty.
    expect(await store.listNodes()).toEqual([]);
    await until(
      () =>
        monitor.ping().then(
          () => true,
          () => false,
        ),
      'monitor reconnected',
    );

    // Leases taken locally are released locally; new leases go to Redis.
    await release(store, local1, 'success');
    await release(store, local2, 'success');
    const next = await acquire(store, A);
    expect(next.node).toBe('a:1');
    expect(await monitor.getInflight(['a:1'])).toEqual({ 'a:1': 1 });
    expect(await monitor.getCircuits(['b:1'])).toEqual({ 'b:1': { state: 'closed', failures: 0, openUntilMs: 0 } });
    expect(unhandled).toEqual([]);
  });

  it('while degraded the last fleet ages on the local clock: fresh records turn stale, none is dropped', async () => {
    server = await startRedis();
    let now = Date.now();
    const monitor = new RedisStateStore({ url: server.url, keyPrefix: 'aging:', log: quiet });
    const store = new ResilientStateStore({
      remote: new RedisStateStore({ url: server.url, keyPrefix: 'aging:', log: quiet }),
      recheckMs: 60_000,
      clock: () => now,
      log: quiet,
    });
    closers.push(
      () => monitor.close(),
      () => store.close(),
    );
    const scan = await monitor.beginScan();
    await monitor.putNode(nodeState('a:1'), 5000, { keepMs: LONG_MS, scan });
    await monitor.completeScan(scan, 'monitor-1');
    await monitor.claimMonitorLease('monitor-1', 5000);
    const before = await store.listFleet();
    expect(before).toMatchObject({ nodes: [{ freshness: 'fresh' }], monitor: { monitorId: 'monitor-1' }, lastScan: { scan } });

    await server.stop();
    now += 6000;
    const aged = await store.listFleet();
    expect(store.health().degraded).toBe(true);
    expect(aged).toMatchObject({ nodes: [{ state: { node: 'a:1' }, freshness: 'stale' }], monitor: null, lastScan: { scan } });
    expect(aged.nowMs - before.nowMs).toBeGreaterThanOrEqual(6000);
    expect((await store.listNodes()).map((n) => n.node)).toEqual(['a:1']);
    // An in-process monitor's writes still show, fresh on the aged clock.
    await store.putNode(nodeState('b:1'), 5000, { keepMs: LONG_MS, scan: scan + 1 });
    expect((await store.listFleet()).nodes.map((n) => [n.state.node, n.freshness])).toEqual([
      ['a:1', 'stale'],
      ['b:1', 'fresh'],
    ]);
    expect((await store.claimMonitorLease('monitor-1', 5000)).monitorId).toBe('monitor-1');
  });

  it('Redis down from the start: no fleet to serve (clear error), capacity still accounted locally', async () => {
    const port = await freePort();
    const store = new ResilientStateStore({
      remote: new RedisStateStore({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'x:', log: quiet }),
      recheckMs: 50,
      log: quiet,
    });
    closers.push(() => store.close());
    await expect(store.listNodes()).rejects.toMatchObject({ code: 'state_unavailable', message: expect.stringMatching(/no fleet/) });
    expect(store.health()).toMatchObject({ degraded: true, remoteFailures: 1 });
    expect((await acquire(store, [{ node: 'a:1', maxconn: 1 }])).node).toBe('a:1');
    expect((await acquire(store, [{ node: 'a:1', maxconn: 1 }])).node).toBeNull();

    server = await startRedis({ port });
    await until(() => store.health().degraded === false, 'back on Redis');
    expect(await store.listNodes()).toEqual([]);
  });

  it('engine loads written while Redis is down are read back locally (an in-process monitor keeps routing informed)', async () => {
    const port = await freePort();
    const store = new ResilientStateStore({
      remote: new RedisStateStore({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'x:', log: quiet }),
      recheckMs: 60_000,
      log: quiet,
    });
    closers.push(() => store.close());
    await store.putEngineLoads([reading('a:1', { waiting: 9 })], LONG_MS);
    expect(store.health().degraded).toBe(true);
    expect(await store.getEngineLoads(['a:1', 'b:1'])).toEqual({ 'a:1': reading('a:1', { waiting: 9 }) });
  });
});
