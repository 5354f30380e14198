/** `pnpm start:monitor` as a real process: Redis state, the cron schedule, /health, /metrics, SIGTERM. */
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { spawnTsProcess, startFakeLlmServer, uniquePrefix, type FakeLlmProcess, type SpawnedProcess } from '@ai-lb/testkit';
import { RedisStateStore } from '@ai-lb/shared';
import { waitFor } from '@ai-lb/monitor/testing/monitor-test-env.ts';
import { ENTRIES, logLines, takePort } from './testing/cli-processes.ts';

const ENTRY = ENTRIES.monitor;

let fake: FakeLlmProcess;
let monitor: SpawnedProcess<{ port: number; pid: number; targets: number }> | undefined;
let store: RedisStateStore;
const prefix = uniquePrefix('monitor-main');

beforeAll(async () => {
  fake = await startFakeLlmServer({ kind: 'llamacpp', models: ['a.gguf'], slots: 2 });
  store = new RedisStateStore({ url: inject('redisUrl'), keyPrefix: prefix });
});

afterAll(async () => {
  await monitor?.stop('SIGKILL');
  await fake?.stop();
  await store?.close();
});

test('scans on its schedule into Redis, serves /health and /metrics, exits 0 on SIGTERM', async () => {
  monitor = await spawnTsProcess(ENTRY, [], {
    env: {
      REDIS_URL: inject('redisUrl'),
      REDIS_KEY_PREFIX: prefix,
      SCAN_HOSTS: fake.node,
      SCAN_INTERVAL: '1',
      MONITOR_PORT: '0',
      LOAD_BALANCER_HOST: '127.0.0.1',
    },
  });
  expect(monitor.ready).toMatchObject({ targets: 1 }); // a host:port entry pins its port
  const base = `http://127.0.0.1:${monitor.ready.port}`;

  const healthy = await waitFor(async () => (await fetch(`${base}/health`)).status === 200, 10_000, 100);
  expect(healthy).toBe(true);
  expect((await store.listNodes()).map((n) => [n.node, n.kind, n.maxconn])).toEqual([[fake.node, 'llamacpp', 2]]);

  // The schedule keeps scanning: a second scan lands within a few intervals.
  const rescanned = await waitFor(
    async () => /ai_lb_monitor_scans_total\{outcome="ok"\} ([2-9]|\d\d)/.test(await (await fetch(`${base}/metrics`)).text()),
    6000,
    200,
  );
  expect(rescanned).toBe(true);

  const exited = new Promise<number | null>((resolve) => monitor!.child.once('exit', (code) => resolve(code)));
  monitor.child.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(monitor.stderr()).not.toMatch(/\n\s+at /);
  // Logs: JSON lines, every one marked with the service.
  const lines = logLines(monitor.stderr());
  expect(new Set(lines.map((l) => l.service))).toEqual(new Set(['monitor']));
  expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['monitor listening', 'fleet changed', 'shutting down']));
  expect(lines.find((l) => l.msg === 'fleet changed')?.nodes).toEqual([{ node: fake.node, kind: 'llamacpp' }]);
});

test('MONITOR_PORT taken: one line naming it, exit 1', async () => {
  const { port, release } = await takePort();
  try {
    await expect(
      spawnTsProcess(ENTRY, [], {
        env: { SCAN_HOSTS: fake.node, MONITOR_PORT: String(port), LOAD_BALANCER_HOST: '127.0.0.1', REDIS_URL: inject('redisUrl') },
      }),
    ).rejects.toThrow(new RegExp(`exited with 1 before it was ready: ai-lb: MONITOR_PORT=${port} is already in use\n$`));
  } finally {
    await release();
  }
});

test('bad configuration: one line naming the variable, exit 1', async () => {
  await expect(
    spawnTsProcess(ENTRY, [], { env: { SCAN_HOSTS: '10.0.0.0/8', MONITOR_PORT: '0', REDIS_URL: inject('redisUrl') } }),
  ).rejects.toThrow(/exited with 1 before it was ready: ai-lb: SCAN_HOSTS="10\.0\.0\.0\/8" is invalid: expected at most 65536[^\n]*\n$/);
});
