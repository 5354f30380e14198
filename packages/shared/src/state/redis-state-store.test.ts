import { freePort, startRedis, startRedisMonitor, uniquePrefix, type RedisMonitor } from '@ai-lb/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { GatewayError } from '../errors.ts';
import { createLogger, silentLogger } from '../logger.ts';
import { acquire, LONG_MS, nodeState, release, sleep } from './contract-harness.ts';
import { RedisStateStore } from './redis-state-store.ts';
import { describeStateStoreContract } from './state-store.contract.ts';

const redisUrl = inject('redisUrl');
const quiet = silentLogger;
let admin: Redis;
const usedPrefixes: string[] = [];

function prefix(): string {
  const p = uniquePrefix('store');
  usedPrefixes.push(p);
  return p;
}

beforeAll(() => {
  admin = new Redis(redisUrl);
});

afterAll(async () => {
  // Keys carry TTLs, but rr/circuit live 24 h: leave the shared server clean.
  for (const p of usedPrefixes) {
    const keys = await admin.keys(`${p}*`);
    if (keys.length > 0) await admin.del(...keys);
  }
  await admin.quit();
});

describeStateStoreContract('redis', async () => {
  const keyPrefix = prefix();
  const opened: RedisStateStore[] = [];
  const open = async () => {
    const store = new RedisStateStore({ url: redisUrl, keyPrefix, log: quiet });
    opened.push(store);
    await store.ping();
    return store;
  };
  const store = await open();
  return {
    store,
    peer: open,
    advance: sleep,
    listening: (s) => (s as RedisStateStore).subscriptionsReady(),
    close: async () => void (await Promise.all(opened.map((s) => s.close()))),
  };
});

describe('RedisStateStore beyond the contract', () => {
  const stores: RedisStateStore[] = [];
  const clients: Redis[] = [];
  const monitors: RedisMonitor[] = [];
  afterEach(async () => {
    for (const monitor of monitors.splice(0)) monitor.close();
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
  });
  const openStore = (keyPrefix = prefix()) => {
    const store = new RedisStateStore({ url: redisUrl, keyPrefix, log: quiet });
    stores.push(store);
    return store;
  };

  it('acquireSlot, releaseSlot and renewLeases are one round trip each (MONITOR)', async () => {
    const client = new Redis(redisUrl);
    clients.push(client);
    const store = new RedisStateStore({ client, keyPrefix: prefix() });
    stores.push(store);
    const candidates = [
      { node: 'a:1', maxconn: 2 },
      { node: 'b:1', maxconn: 2 },
    ];
    // Warm-up: the first EVALSHA of each script meets NOSCRIPT and falls back to EVAL once.
    const warm = await acquire(store, candidates, { order: 'rotate', rotateKey: 'm', sticky: { key: 's', ttlMs: LONG_MS } });
    await store.renewLeases([{ node: warm.node!, leaseId: warm.leaseId }], LONG_MS);
    await release(store, warm, 'failure');

    const monitor = await startRedisMonitor(redisUrl);
    monitors.push(monitor);
    const { seen } = monitor;
    const mine = `127.0.0.1:${client.stream.localPort}`;
    /** The commands this client sent while `work` ran, framed by two ECHO markers. */
    const callsBetween = async (label: string, work: () => Promise<unknown>) => {
      await client.echo(`${label}-start`);
      await work();
      await client.echo(`${label}-end`);
      await waitFor(() => seen.some((s) => s.args[1] === `${label}-end`), 2000);
      const window = seen.splice(0);
      const from = window.findIndex((s) => s.args[1] === `${label}-start`);
      const to = window.findIndex((s) => s.args[1] === `${label}-end`);
      expect(from).toBeGreaterThanOrEqual(0);
      return window
        .slice(from + 1, to)
        .filter((s) => s.source === mine)
        .map((s) => s.args[0].toLowerCase());
    };

    let lease: Awaited<ReturnType<typeof acquire>> | undefined;
    expect(
      await callsBetween('acquire', async () => {
        lease = await acquire(store, candidates, { order: 'rotate', rotateKey: 'm', sticky: { key: 's', ttlMs: LONG_MS } });
      }),
    ).toEqual(['evalsha']);
    expect(lease!.node).not.toBeNull();
    expect(
      await callsBetween('renew', () =>
        store.renewLeases(
          [
            { node: lease!.node!, leaseId: lease!.leaseId },
            { node: 'b:1', leaseId: 'x' },
          ],
          LONG_MS,
        ),
      ),
    ).toEqual(['evalsha']);
    expect(await callsBetween('release', () => release(store, lease!, 'failure'))).toEqual(['evalsha']);
  });

  it('200 concurrent acquires from 3 replicas on maxconn 4: exactly 4 succeed', async () => {
    const keyPrefix = prefix();
    const replicas = [openStore(keyPrefix), openStore(keyPrefix), openStore(keyPrefix)];
    await Promise.all(replicas.map((r) => r.ping()));
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => acquire(replicas[i % 3], [{ node: 'a:1', maxconn: 4 }])));
    expect(results.filter((r) => r.node === 'a:1')).toHaveLength(4);
    expect(results.filter((r) => r.node === null && r.reason === 'capacity')).toHaveLength(196);
    expect(await replicas[0].getInflight(['a:1'])).toEqual({ 'a:1': 4 });
  });

  it('every key it writes is under the prefix, named by redisKeys, and expires', async () => {
    const keyPrefix = prefix();
    const store = openStore(keyPrefix);
    await store.putNode(nodeState('a:1'), 5000);
    const lease = await acquire(store, [{ node: 'a:1', maxconn: 1 }], {
      order: 'rotate',
      rotateKey: 'm1',
      leaseMs: 1000,
      sticky: { key: 'm1:sess', ttlMs: 7000 },
    });
    await release(store, { ...lease, leaseId: 'other' }, 'failure');
    const k = store.keys;
    expect((await admin.keys(`${keyPrefix}*`)).sort()).toEqual(
      [k.node('a:1'), k.nodeIndex(), k.slots('a:1'), k.circuit('a:1'), k.roundRobin('m1'), k.sticky('m1:sess')].sort(),
    );
    const ttl = async (key: string) => admin.pttl(key);
    expect(await ttl(k.node('a:1'))).toBeGreaterThan(4000);
    expect(await ttl(k.nodeIndex())).toBeGreaterThan(4000);
    expect(await ttl(k.slots('a:1'))).toBeLessThanOrEqual(2000);
    expect(await ttl(k.sticky('m1:sess'))).toBeLessThanOrEqual(7000);
    for (const key of [k.circuit('a:1'), k.roundRobin('m1')]) expect(await ttl(key)).toBeGreaterThan(3_600_000);
  });

  it('markNodeUnhealthy keeps the key’s PTTL instead of refreshing it', async () => {
    const store = openStore();
    await store.putNode(nodeState('a:1'), 10_000);
    await sleep(200);
    await store.markNodeUnhealthy('a:1', 'down', 1);
    const remaining = await admin.pttl(store.keys.node('a:1'));
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThanOrEqual(9_800);
  });

  it('a node key and its index entry live TTL + keep; the lease and scan keys carry their TTLs', async () => {
    const store = openStore();
    await store.putNode(nodeState('a:1'), 10_000, { keepMs: 50_000, scan: 3 });
    const pttl = await admin.pttl(store.keys.node('a:1'));
    expect(pttl).toBeGreaterThan(55_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
    const stored = JSON.parse((await admin.get(store.keys.node('a:1')))!);
    expect(stored).toMatchObject({ node: 'a:1', scan: 3, freshUntilMs: expect.any(Number) });
    await store.claimMonitorLease('m', 5000);
    expect(await admin.pttl(store.keys.monitorLease())).toBeLessThanOrEqual(5000);
    await store.completeScan(await store.beginScan(), 'm');
    expect(await admin.pttl(store.keys.scans())).toBeGreaterThan(24 * 3_600_000);
  });

  it('a record written before freshness was stored (plain NodeState) is fresh until its expiry', async () => {
    const store = openStore();
    const legacy = nodeState('old:1');
    await admin.set(store.keys.node('old:1'), JSON.stringify(legacy), 'PX', 10_000);
    await admin.zadd(store.keys.nodeIndex(), Date.now() + 10_000, 'old:1');
    const fleet = await store.listFleet();
    expect(fleet.nodes).toEqual([{ state: legacy, freshness: 'fresh', freshUntilMs: expect.any(Number), scan: 0 }]);
    expect(fleet.nodes[0].freshUntilMs - fleet.nowMs).toBeGreaterThan(5_000);
  });

  it('calls made while the first connection is still opening all wait for it, sharing one waiter', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const store = openStore();
      const results = await Promise.all(Array.from({ length: 50 }, () => store.getInflight(['a:1'])));
      expect(results).toHaveLength(50);
      await sleep(10);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });

  describe('acquires and releases of one event-loop turn share one SLOT_OPS call', () => {
    /** A store on a client of its own, and the EVALSHA calls that client sends while `work` runs. */
    const watched = async () => {
      const client = new Redis(redisUrl);
      clients.push(client);
      const store = new RedisStateStore({ client, keyPrefix: prefix() });
      stores.push(store);
      await acquire(store, [{ node: 'warm:1', maxconn: 0 }]); // loads the script (NOSCRIPT once)
      const monitor = await startRedisMonitor(redisUrl);
      monitors.push(monitor);
      const mine = `127.0.0.1:${client.stream.localPort}`;
      const evalshas: number[] = [];
      /** Waits until the monitor saw this client's fence, then records its EVALSHAs' op counts. */
      const settle = async () => {
        const fence = `fence-${Math.random()}`;
        await client.echo(fence);
        await waitFor(() => monitor.seen.some((s) => s.args[1] === fence), 2000);
        for (const { source, args } of monitor.seen.splice(0)) {
          if (source === mine && args[0].toLowerCase() === 'evalsha') evalshas.push(Number(args[3 + Number(args[2])]));
        }
      };
      return { store, evalshas, settle };
    };

    it('a burst of 150 ops goes out as 3 calls (64 ops each at most) and every op gets its own answer', async () => {
      const { store, evalshas, settle } = await watched();
      const candidates = [
        { node: 'a:1', maxconn: 100 },
        { node: 'b:1', maxconn: 20 },
      ];
      const results = await Promise.all(Array.from({ length: 150 }, () => acquire(store, candidates, { order: 'least_loaded' })));
      await settle();
      expect(evalshas).toEqual([64, 64, 22]);
      // least_loaded by fill ratio, exactly as if they had come one by one: 100 + 20 = 120 fit.
      expect(results.filter((r) => r.node === 'a:1')).toHaveLength(100);
      expect(results.filter((r) => r.node === 'b:1')).toHaveLength(20);
      expect(results.filter((r) => r.node === null && r.reason === 'capacity')).toHaveLength(30);
      expect(results.at(-1)!.inflight).toEqual({ 'a:1': 100, 'b:1': 20 });

      evalshas.length = 0;
      const placed = results.filter((r) => r.node !== null);
      await Promise.all(placed.map((r) => release(store, r, 'success')));
      await settle();
      expect(evalshas).toEqual([64, 56]);
      expect(await store.getInflight(['a:1', 'b:1'])).toEqual({ 'a:1': 0, 'b:1': 0 });
    });

    it('ops run in the order they were made: a release frees the slot for the acquire after it', async () => {
      const { store, evalshas, settle } = await watched();
      const full = await acquire(store, [{ node: 'a:1', maxconn: 1 }]);
      await settle();
      evalshas.length = 0;
      const [, next] = await Promise.all([release(store, full, 'success'), acquire(store, [{ node: 'a:1', maxconn: 1 }])]);
      await settle();
      expect(evalshas).toEqual([2]);
      expect(next.node).toBe('a:1');
    });

    it('a slots key a release emptied in a call gets its expiry back from the next acquire of that call', async () => {
      const { store, evalshas, settle } = await watched();
      const key = store.keys.slots('a:1');
      const a1 = [{ node: 'a:1', maxconn: 0 }];
      const first = await acquire(store, a1, { leaseMs: 1000 });
      await settle();
      evalshas.length = 0;
      // One call: the acquire runs the key's upkeep; both releases empty the key (Redis
      // deletes an empty zset); the last acquire re-creates it, and it must expire again.
      const [, , , last] = await Promise.all([
        acquire(store, a1, { leaseMs: 1000, leaseId: 'second' }),
        release(store, first, 'success'),
        release(store, { node: 'a:1', leaseId: 'second' }, 'success'),
        acquire(store, a1, { leaseMs: 1000 }),
      ]);
      await settle();
      expect(evalshas).toEqual([4]);
      expect(await admin.zrange(key, 0, -1)).toEqual([last.leaseId]);
      expect(await admin.pttl(key)).toBeGreaterThan(1500); // 2 × lease: never a slots key without expiry
    });

    it('an op that fails in Redis rejects alone; the others in its call succeed', async () => {
      const { store, evalshas, settle } = await watched();
      await admin.set(store.keys.slots('broken:1'), 'not a zset');
      await settle();
      evalshas.length = 0;
      const [good, bad, alsoGood] = await Promise.allSettled([
        acquire(store, [{ node: 'a:1', maxconn: 1 }]),
        acquire(store, [{ node: 'broken:1', maxconn: 1 }]),
        acquire(store, [{ node: 'b:1', maxconn: 1 }]),
      ]);
      await settle();
      expect(evalshas).toEqual([3]);
      expect(good).toMatchObject({ status: 'fulfilled', value: { node: 'a:1' } });
      expect(alsoGood).toMatchObject({ status: 'fulfilled', value: { node: 'b:1' } });
      expect(bad.status).toBe('rejected');
      const error = (bad as PromiseRejectedResult).reason as GatewayError;
      expect(error).toBeInstanceOf(GatewayError);
      expect(error.code).toBe('state_unavailable');
      expect(error.message).toMatch(/acquireSlot failed: .*WRONGTYPE/);
    });

    it('non-ASCII names (model, session) are sent with their UTF-8 byte lengths', async () => {
      const { store } = await watched();
      const candidates = [
        { node: 'a:1', maxconn: 0 },
        { node: 'b:1', maxconn: 0 },
      ];
      const extra = {
        order: 'rotate' as const,
        rotateKey: 'modèle-日本語-🚀',
        sticky: { key: 'modèle-日本語-🚀:sessión', ttlMs: LONG_MS },
      };
      const first = await acquire(store, candidates, extra);
      const second = await acquire(store, candidates, extra);
      expect(first.node).not.toBeNull();
      expect(second.node).toBe(first.node); // the session stuck
      expect(await admin.get(store.keys.roundRobin('modèle-日本語-🚀'))).toBe('2'); // rotate counts every acquire
      expect(await admin.get(store.keys.sticky('modèle-日本語-🚀:sessión'))).toBe(first.node);
    });

    it('loads the script again when Redis lost it (SCRIPT FLUSH, a restarted Redis)', async () => {
      const { store } = await watched();
      await admin.script('FLUSH');
      const lease = await acquire(store, [{ node: 'a:1', maxconn: 1 }]);
      expect(lease.node).toBe('a:1');
      await release(store, lease, 'success');
      expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 0 });
    });
  });

  it('expired leases are pruned from a slots key once its expiry needs renewing, and never counted before', async () => {
    const store = openStore();
    const key = store.keys.slots('a:1');
    const _first = await acquire(store, [{ node: 'a:1', maxconn: 1 }], { leaseMs: 1000 });
    expect(await admin.pttl(key)).toBeGreaterThan(1500); // 2 × lease
    await sleep(300);
    await acquire(store, [{ node: 'b:1', maxconn: 1 }], { leaseMs: 1000 }); // another key: no upkeep here
    const early = await acquire(store, [{ node: 'a:1', maxconn: 2 }], { leaseMs: 1000 });
    expect(early.inflight).toEqual({ 'a:1': 2 }); // first and early
    expect(await admin.zcard(key)).toBe(2);
    await sleep(1100); // first and early expired; the key has < 1.5 × lease left
    const later = await acquire(store, [{ node: 'a:1', maxconn: 1 }], { leaseMs: 1000 });
    expect(later.node).toBe('a:1'); // expired leases do not count
    expect(await admin.zrange(key, 0, -1)).toEqual([later.leaseId]);
    expect(await admin.pttl(key)).toBeGreaterThan(1500);
  });

  it('a corrupt node record is skipped, not fatal to listNodes', async () => {
    const store = openStore();
    await store.putNode(nodeState('a:1'), 10_000);
    await store.putNode(nodeState('b:1'), 10_000);
    await admin.set(store.keys.node('b:1'), '{not json', 'KEEPTTL');
    expect((await store.listNodes()).map((n) => n.node)).toEqual(['a:1']);
  });
});

describe('RedisStateStore while Redis is unreachable', () => {
  it('every call rejects fast with state_unavailable; nothing hangs, nothing is unhandled', async () => {
    const port = await freePort();
    const logged: Record<string, unknown>[] = [];
    const log = createLogger({ destination: { write: (line: string) => logged.push(JSON.parse(line)) } });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const store = new RedisStateStore({ url: `redis://:secret@127.0.0.1:${port}`, keyPrefix: 'x:', log });
    try {
      const stopListening = store.onFleetChange(() => undefined);
      const calls: [string, () => Promise<unknown>][] = [
        ['ping', () => store.ping()],
        ['listNodes', () => store.listNodes()],
        ['putNode', () => store.putNode(nodeState('a:1'), 1000)],
        ['acquireSlot', () => acquire(store, [{ node: 'a:1', maxconn: 1 }])],
        ['releaseSlot', () => release(store, { node: 'a:1', leaseId: 'l' }, 'success')],
        ['getInflight', () => store.getInflight(['a:1'])],
        ['getCircuits', () => store.getCircuits(['a:1'])],
      ];
      for (const round of [1, 2]) {
        for (const [name, call] of calls) {
          const started = performance.now();
          const error = await call().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error, `${name} (round ${round})`).toBeInstanceOf(GatewayError);
          expect((error as GatewayError).code).toBe('state_unavailable');
          expect(performance.now() - started, name).toBeLessThan(1000);
        }
        await sleep(300); // let the client retry in the background between rounds
      }
      stopListening();
      // One line per outage, not one per retry; the URL without its password.
      expect(logged).toEqual([
        expect.objectContaining({
          level: 'warn',
          msg: 'redis unreachable; reconnecting in the background',
          redis: `redis://***@127.0.0.1:${port}`,
          err: 'ECONNREFUSED',
        }),
      ]);
      expect(JSON.stringify(logged)).not.toContain('secret');
    } finally {
      const started = performance.now();
      await store.close();
      expect(performance.now() - started).toBeLessThan(1000);
      await sleep(20);
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});

describe('RedisStateStore while Redis is frozen (connected, never answers)', () => {
  it('acquire and release reject within the command timeout instead of hanging the request', async () => {
    const redis = await startRedis();
    const store = new RedisStateStore({ url: redis.url, keyPrefix: uniquePrefix('frozen'), log: quiet, commandTimeoutMs: 300 });
    try {
      await store.ping();
      process.kill(redis.pid, 'SIGSTOP');
      for (const [name, call] of [
        ['acquireSlot', () => acquire(store, [{ node: 'a:1', maxconn: 1 }])],
        ['releaseSlot', () => release(store, { node: 'a:1', leaseId: 'l' }, 'success')],
      ] as const) {
        const started = performance.now();
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, name).toBeInstanceOf(GatewayError);
        expect((error as GatewayError).code).toBe('state_unavailable');
        expect(performance.now() - started, name).toBeLessThan(1500);
      }
    } finally {
      process.kill(redis.pid, 'SIGCONT');
      await store.close();
      await redis.stop();
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}
