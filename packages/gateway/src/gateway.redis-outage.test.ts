/**
 * Redis trouble: two replicas on a Redis of their own that the test stops and
 * starts again on the same port, under load. The replicas keep answering from their last
 * fleet with local-only capacity, say so on /health and /metrics, and go back to shared
 * state by themselves.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createStateStore, loadConfig, type StateStore } from '@ai-lb/shared';
import { startFakeLlmServer, startRedis, uniquePrefix, type FakeLlmProcess, type RedisServer } from '@ai-lb/testkit';
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

type HealthBody = { status: string; reason?: string };

let upstream: FakeLlmProcess;
let redis: RedisServer;
let replicas: GatewayProcess[] = [];
let env: Record<string, string>;

/** The monitor's job: (re)write the node record, as its next scan would after a Redis restart. */
async function publishNode(): Promise<void> {
  const store: StateStore = createStateStore(loadConfig(env));
  try {
    await store.putNode(nodeState(upstream.node, ['m1', 'fault-slow-1500'], { maxconn: 8 }), 120_000);
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  [upstream, redis] = await Promise.all([startFakeLlmServer({ models: ['m1'] }), startRedis()]);
  env = replicaEnv(redis.url, uniquePrefix('outage'), { MAX_RETRIES: '0', REQUEST_TIMEOUT_SECS: '5' });
  await publishNode();
  replicas = await startReplicas(2, env);
  for (const gw of replicas) await eventually(async () => (await inflightVia(gw, upstream.node)) === 0, 8000);
}, 60_000);

afterAll(async () => {
  await stopAll(replicas);
  await Promise.all([upstream?.stop(), redis?.stop()]);
});

/** Two clients per replica, one request after another, until stopped; every status kept. */
function startLoad() {
  const statuses: number[] = [];
  let running = true;
  const workers = [0, 1, 2, 3].map(async (i) => {
    for (let n = 0; running && n < 10_000; n++) {
      const res = await postChat(replicas[i % 2], chatBody('m1')).catch(() => null);
      statuses.push(res?.status ?? -1);
      await res?.arrayBuffer();
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  return {
    statuses,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

describe('Redis stops under load and comes back on the same port', () => {
  test('the replicas keep serving, report degraded, and share state again after recovery', async () => {
    for (const gw of replicas) expect((await getJson<HealthBody>(gw, '/health')).body.status).toBe('ok');
    const load = startLoad();
    await eventually(() => load.statuses.length >= 8);

    await redis.stop();
    const outageStartedAt = load.statuses.length;
    for (const gw of replicas) {
      await eventually(async () => (await getJson<HealthBody>(gw, '/health')).body.status === 'degraded', 4000, 50);
      const health = await getJson<HealthBody>(gw, '/health');
      expect(health.status).toBe(200); // a blinking Redis must not pull every replica from the load balancer
      expect(health.body.reason).toMatch(/Redis unreachable/);
      expect(metricValue(await getText(gw, '/metrics'), 'ai_lb_state_store_degraded')).toBe(1);
      expect(metricValue(await getText(gw, '/metrics'), 'ai_lb_state_store_errors_total')).toBeGreaterThan(0);
    }
    await eventually(() => load.statuses.length >= outageStartedAt + 20, 4000);
    const duringOutage = load.statuses.slice(outageStartedAt);

    redis = await startRedis({ port: redis.port });
    await publishNode();
    for (const gw of replicas) {
      await eventually(async () => (await getJson<HealthBody>(gw, '/health')).body.status === 'ok', 8000, 100);
      expect(metricValue(await getText(gw, '/metrics'), 'ai_lb_state_store_degraded')).toBe(0);
    }
    await load.stop();

    expect(duringOutage.filter((s) => s === 200).length).toBeGreaterThanOrEqual(20);
    // No 5xx and no failed connection, before, during or after the outage. (Right after the
    // restart Redis is empty until the node is published again: a 404 there is the truth.)
    expect(load.statuses.filter((s) => s >= 500 || s === -1)).toEqual([]);
    expect(duringOutage.every((s) => s === 200)).toBe(true);

    // Shared again: a slot taken through one replica shows on the other.
    const [gw1, gw2] = replicas;
    const holding = postChat(gw1, chatBody('fault-slow-1500'));
    await eventually(async () => (await inflightVia(gw2, upstream.node)) === 1, 3000);
    expect((await holding).status).toBe(200);
    await eventually(async () => (await inflightVia(gw2, upstream.node)) === 0, 3000);
  }, 30_000);
});
