/**
 * The fleet survives its monitor, with real `pnpm start:monitor` processes on one Redis:
 *  - two monitors: one holds the lease and scans, the other stands by; SIGKILL the holder
 *    and the standby takes over before any record stops being fresh;
 *  - no monitor at all (both killed): the records outlive NODE_TTL_SECS as stale, with no
 *    heartbeat, instead of expiring — gateways keep a fleet to route to;
 *  - a `pnpm start:gateway` process serves every request through a dead monitor, long past
 *    NODE_TTL_SECS, and calls an unknown model unavailable (503 no_fleet), not unknown.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { spawnTsProcess, startFakeLlmServer, uniquePrefix, type FakeLlmProcess, type SpawnedProcess } from '@ai-lb/testkit';
import { RedisStateStore, type FleetSnapshot } from '@ai-lb/shared';
import { waitFor } from '@ai-lb/monitor/testing/monitor-test-env.ts';
import { ENTRIES } from './testing/cli-processes.ts';

const ENTRY = fileURLToPath(new URL('./monitor.ts', import.meta.url));
const NODE_TTL_SECS = 3;

type Monitor = SpawnedProcess<{ port: number; pid: number }>;
let fake: FakeLlmProcess;
let store: RedisStateStore;
const monitors: Monitor[] = [];
const prefix = uniquePrefix('monitor-failover');

beforeAll(async () => {
  fake = await startFakeLlmServer({ kind: 'llamacpp', models: ['a.gguf'], slots: 2 });
  store = new RedisStateStore({ url: inject('redisUrl'), keyPrefix: prefix });
});

afterAll(async () => {
  await Promise.all(monitors.map((m) => m.stop('SIGKILL')));
  await fake?.stop();
  await store?.close();
});

function startMonitorProcess(nodeTtlSecs = NODE_TTL_SECS): Promise<Monitor> {
  return spawnTsProcess(ENTRY, [], {
    env: {
      REDIS_URL: inject('redisUrl'),
      REDIS_KEY_PREFIX: prefix,
      SCAN_HOSTS: fake.node,
      SCAN_INTERVAL: '1', // lease 1 s, asked for every 333 ms
      NODE_TTL_SECS: String(nodeTtlSecs),
      MONITOR_PORT: '0',
      LOAD_BALANCER_HOST: '127.0.0.1',
    },
    readyTimeoutMs: 30_000,
  });
}

/** The monitor process a monitor id (host:pid:random) names. */
function monitorNamed(monitorId: string | undefined): Monitor | undefined {
  const pid = monitorId?.split(':').at(-2);
  return monitors.find((m) => String(m.pid) === pid);
}

async function fleet(): Promise<FleetSnapshot> {
  return store.listFleet();
}

test('SIGKILL the scanning monitor: the standby takes over and the node never stops being fresh', async () => {
  // A TTL with room for a loaded machine: the standby's takeover (lease 1 s + one ask + one
  // scan) must beat it, and on 2 busy cores a process start-up alone can take a second.
  const ttlSecs = 5;
  monitors.push(...(await Promise.all([startMonitorProcess(ttlSecs), startMonitorProcess(ttlSecs)])));
  const scanned = async () => {
    const now = await fleet();
    return now.lastScan !== null && now.nodes.some((n) => n.state.node === fake.node && n.freshness === 'fresh');
  };
  expect(await waitFor(scanned, 15_000)).toBe(true);
  const before = await fleet();
  const holder = monitorNamed(before.monitor?.monitorId);
  expect(holder).toBeDefined();
  const standby = monitors.find((m) => m !== holder)!;

  expect(monitorNamed(before.lastScan?.monitorId)).toBe(holder);
  const standbyHealth = await (await fetch(`http://127.0.0.1:${standby.ready.port}/health`)).json();
  expect(standbyHealth).toMatchObject({ status: 'standby', holder: before.monitor!.monitorId });

  holder!.child.kill('SIGKILL');
  const killedAt = performance.now();
  let takeoverMs: number | null = null;
  const notFresh: string[] = [];
  // Watch for two node TTLs: long enough that the killed monitor's records would have expired.
  while (performance.now() - killedAt < 2 * ttlSecs * 1000) {
    const now = await fleet();
    const node = now.nodes.find((n) => n.state.node === fake.node);
    if (node?.freshness !== 'fresh') notFresh.push(`${Math.round(performance.now() - killedAt)} ms: ${node?.freshness ?? 'absent'}`);
    if (takeoverMs === null && monitorNamed(now.lastScan?.monitorId) === standby) takeoverMs = performance.now() - killedAt;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(notFresh).toEqual([]);
  expect(takeoverMs).not.toBeNull();
  // Lease 1 s + one ask (333 ms) + one scan, with room for a loaded machine.
  expect(takeoverMs!).toBeLessThan(2 * ttlSecs * 1000);
  console.info(`standby completed its first scan ${Math.round(takeoverMs!)} ms after the holder was killed`);
  expect(monitorNamed((await fleet()).monitor?.monitorId)).toBe(standby);
}, 90_000);

test('with every monitor killed the record outlives its TTL as stale, and no heartbeat is left', async () => {
  monitors.push(await startMonitorProcess());
  const scanned = await waitFor(
    async () => (await fleet()).nodes.some((n) => n.state.node === fake.node && n.freshness === 'fresh'),
    15_000,
  );
  expect(scanned).toBe(true);
  for (const monitor of monitors) monitor.child.kill('SIGKILL');
  const killedAt = performance.now();
  const stale = await waitFor(async () => (await fleet()).nodes.some((n) => n.freshness === 'stale'), 2 * NODE_TTL_SECS * 1000);
  expect(stale).toBe(true);
  // Well past the TTL (and the lease): still there, stale, no monitor.
  await new Promise((r) => setTimeout(r, Math.max(0, NODE_TTL_SECS * 1000 + 1500 - (performance.now() - killedAt))));
  const after = await fleet();
  expect(after.monitor).toBeNull();
  expect(after.nodes.map((n) => [n.state.node, n.freshness, n.state.healthy])).toEqual([[fake.node, 'stale', true]]);
  expect((await store.listNodes()).map((n) => n.node)).toEqual([fake.node]);

  // A monitor that comes back makes it fresh again.
  monitors.push(await startMonitorProcess());
  expect(await waitFor(async () => (await fleet()).nodes.some((n) => n.freshness === 'fresh'), 15_000)).toBe(true);
}, 90_000);

test('a gateway keeps serving through a dead monitor: every request succeeds long past NODE_TTL_SECS', async () => {
  const own = uniquePrefix('monitor-dead');
  const env = { REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: own, LOAD_BALANCER_HOST: '127.0.0.1' };
  const monitor: Monitor = await spawnTsProcess(ENTRY, [], {
    env: { ...env, SCAN_HOSTS: fake.node, SCAN_INTERVAL: '1', NODE_TTL_SECS: String(NODE_TTL_SECS), MONITOR_PORT: '0' },
    readyTimeoutMs: 30_000,
  });
  monitors.push(monitor);
  const gateway = await spawnTsProcess<{ port: number }>(ENTRIES.gateway, [], {
    env: { ...env, LOAD_BALANCER_PORT: '0', NODE_TTL_SECS: String(NODE_TTL_SECS), LOG_LEVEL: 'warn' },
    readyTimeoutMs: 30_000,
  });
  try {
    const base = `http://127.0.0.1:${gateway.ready.port}`;
    const chat = (model: string) =>
      fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
      });
    expect(await waitFor(async () => (await chat('a.gguf')).status === 200, 15_000)).toBe(true);
    monitor.child.kill('SIGKILL');
    // Four TTLs of steady traffic (bounded: at most 400 requests): none may fail.
    const statuses = new Map<number, number>();
    const until = performance.now() + 4 * NODE_TTL_SECS * 1000;
    for (let i = 0; i < 400 && performance.now() < until; i++) {
      const res = await chat('a.gguf');
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect([...statuses.keys()]).toEqual([200]);
    const nodes = (await (await fetch(`${base}/v1/nodes`)).json()) as { data: { node: string; freshness: string }[] };
    expect(nodes.data.map((n) => [n.node, n.freshness])).toEqual([[fake.node, 'stale']]);
    // Without a monitor the fleet is not known to be complete: an unknown model is unavailable, not unknown.
    const unknown = await chat('never-listed');
    expect(unknown.status).toBe(503);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('no_fleet');
  } finally {
    await gateway.stop();
  }
}, 90_000);
