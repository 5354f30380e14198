/**
 * Redis behind Sentinel: two gateway processes find the master through three sentinels
 * (REDIS_SENTINELS). The master is SIGKILLed under load, the sentinels promote the replica,
 * and the gateways follow it: commands, scripts and pub/sub all on the new master. Only
 * requests in flight at the cut may fail.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createStateStore, loadConfig, redisKeys } from '@ai-lb/shared';
import { startFakeLlmServer, startRedisSentinelSet, uniquePrefix, type FakeLlmProcess, type RedisSentinelSet } from '@ai-lb/testkit';
import { chatBody, eventually, nodeState } from './testing/gateway-harness.ts';
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
} from './testing/gateway-processes.ts';

type HealthBody = { status: string };

let sentinel: RedisSentinelSet | undefined;
let upstream: FakeLlmProcess;
let replicas: GatewayProcess[] = [];
let env: Record<string, string>;

beforeAll(async () => {
  // Both settle before anything is thrown, so afterAll stops whichever did start.
  const [set, fake] = await Promise.allSettled([startRedisSentinelSet(), startFakeLlmServer({ models: ['m1'] })]);
  if (set.status === 'fulfilled') sentinel = set.value;
  if (fake.status === 'fulfilled') upstream = fake.value;
  for (const started of [set, fake]) if (started.status === 'rejected') throw started.reason;
  // REDIS_URL '' (= unset) masks one the suite may run with: beside sentinels it is refused.
  env = replicaEnv('', uniquePrefix('sentinel'), {
    REDIS_SENTINELS: sentinel!.sentinels,
    REDIS_SENTINEL_NAME: sentinel!.masterName,
    MAX_RETRIES: '0',
    REQUEST_TIMEOUT_SECS: '5',
    SLOT_LEASE_SECS: '2',
  });
  const store = createStateStore(loadConfig(env), {});
  try {
    await store.putNode(nodeState(upstream.node, ['m1', 'fault-slow-3000'], { maxconn: 8 }), 300_000);
  } finally {
    await store.close();
  }
  replicas = await startReplicas(2, env);
  for (const gw of replicas) await eventually(async () => (await inflightVia(gw, upstream.node)) === 0, 8000);
}, 60_000);

afterAll(async () => {
  await stopAll(replicas);
  await Promise.all([upstream?.stop(), sentinel?.stop()]);
});

interface Outcome {
  status: number;
  startedAt: number;
  endedAt: number;
}

/** Two clients per replica, one request after another, until stopped (bounded either way). */
function startLoad() {
  const outcomes: Outcome[] = [];
  let running = true;
  const workers = [0, 1, 2, 3].map(async (i) => {
    for (let n = 0; running && n < 5000; n++) {
      const startedAt = Date.now();
      const res = await postChat(replicas[i % 2], chatBody('m1'), { signal: AbortSignal.timeout(10_000) }).catch(() => null);
      await res?.arrayBuffer().catch(() => undefined);
      outcomes.push({ status: res?.status ?? -1, startedAt, endedAt: Date.now() });
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

/** eventually(), failing with what was waited for (this test waits for many things). */
async function within(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  await eventually(check, timeoutMs, 100).catch(() => {
    throw new Error(`waited ${timeoutMs} ms for ${what}`);
  });
}

const onRedis = async (gw: GatewayProcess) =>
  (await getJson<HealthBody>(gw, '/health')).body.status === 'ok' &&
  metricValue(await getText(gw, '/metrics'), 'ai_lb_state_store_degraded') === 0;

describe('Redis Sentinel: the master dies under load', () => {
  test('the gateways follow the promotion; only requests in flight at the cut may fail', async () => {
    const set = sentinel!;
    for (const gw of replicas) expect(await onRedis(gw)).toBe(true);
    const load = startLoad();
    await within('load before the cut', () => load.outcomes.length >= 20, 20_000);

    const killedAt = Date.now();
    const oldPort = await set.killMaster();
    const newPort = await set.waitForNewMaster(oldPort, 45_000);
    const promotedAt = Date.now();
    // Back on shared state: each replica out of degraded mode (it pings the new master).
    for (const gw of replicas) await within(`gateway ${gw.ready.port} back on Redis`, () => onRedis(gw), 30_000);
    const recoveredAt = Date.now();
    // Both saw the cut (their Redis calls failed, so they served degraded meanwhile) ...
    for (const gw of replicas) {
      expect(metricValue(await getText(gw, '/metrics'), 'ai_lb_state_store_errors_total')).toBeGreaterThan(0);
    }
    // ... and their pub/sub connections resubscribed on the new master.
    const master = set.connect(newPort);
    const channel = redisKeys(env.REDIS_KEY_PREFIX).fleetChangedChannel();
    await within(
      'both subscribers on the new master',
      async () => Number(((await master.pubsub('NUMSUB', channel)) as [string, number])[1]) >= 2,
      15_000,
    );

    const afterRecovery = load.outcomes.length;
    await within('load after recovery', () => load.outcomes.length >= afterRecovery + 20, 20_000);
    await load.stop();

    const failed = load.outcomes.filter((o) => o.status !== 200);
    const inFlightAtCut = (o: Outcome) => o.startedAt <= killedAt && o.endedAt >= killedAt;
    expect(failed.filter((o) => !inFlightAtCut(o))).toEqual([]);
    expect(load.outcomes.slice(afterRecovery).every((o) => o.status === 200)).toBe(true);

    // A lease taken on the old master just before the cut may have reached the replica while
    // its release did not: it stays until its lease time (SLOT_LEASE_SECS) runs out.
    const [gw1, gw2] = replicas;
    const slotsKey = redisKeys(env.REDIS_KEY_PREFIX).slots(upstream.node);
    const liveLeases = async () => {
      const [seconds, micros] = await master.time();
      return master.zcount(slotsKey, Number(seconds) * 1000 + Math.floor(Number(micros) / 1000), '+inf');
    };
    await within('leases from before the cut to expire', async () => (await liveLeases()) === 0, 15_000);
    const leftoversGoneAt = Date.now();

    // Shared state again, on the new master: a slot taken through one replica shows on the other.
    const holding = postChat(gw1, chatBody('fault-slow-3000'));
    await within('the held slot to show through the other gateway', async () => (await inflightVia(gw2, upstream.node)) === 1, 10_000);
    expect(await liveLeases()).toBe(1);
    expect((await holding).status).toBe(200);
    master.disconnect();

    console.log(
      `sentinel failover under load: ${load.outcomes.length} requests, ${failed.length} failed ` +
        `(${load.outcomes.filter(inFlightAtCut).length} in flight at the cut); promoted after ${promotedAt - killedAt} ms, ` +
        `both gateways back on Redis after ${recoveredAt - killedAt} ms; leases left from the cut gone after ` +
        `${leftoversGoneAt - killedAt} ms (SLOT_LEASE_SECS=${env.SLOT_LEASE_SECS})`,
    );
  }, 90_000);
});
