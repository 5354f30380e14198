/**
 * Servers that answer badly: an HTML page, a 500, a hang past the probe timeout, a body
 * far over the size cap, truncated JSON, JSON of the wrong shape. Each leaves an absent
 * node (never a node before) or an unhealthy one (a node before), and a counted probe
 * error with the right reason — never a crash, a hang or a half-written record.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startFakeLlmServer, type FakeLlmProcess, type FaultFakeKind } from '@ai-lb/testkit';
import { MemoryStateStore } from '@ai-lb/shared';
import { startMonitor } from './start-monitor.ts';
import { metricValue, nodesById, testConfig } from './testing/monitor-test-env.ts';
import type { ProbeErrorReason } from './probes/probe-error.ts';

// Generous for a busy machine: the huge answer must be cut for its size, not its time.
const PROBE_TIMEOUT_MS = 3000;

const CASES: [FaultFakeKind, ProbeErrorReason][] = [
  ['garbage', 'invalid_json'],
  ['http-500', 'http_status'],
  ['hang', 'timeout'],
  ['huge', 'too_large'],
  ['invalid-json', 'invalid_json'],
  ['bad-shape', 'bad_shape'],
];

const fakes = new Map<FaultFakeKind, FakeLlmProcess>();

beforeAll(async () => {
  await Promise.all(CASES.map(async ([kind]) => fakes.set(kind, await startFakeLlmServer({ kind: 'openai', models: ['m'] }))));
});

afterAll(async () => {
  await Promise.all([...fakes.values()].map((fake) => fake.stop()));
});

describe.each(CASES)('a server answering %s', (kind, reason) => {
  test(`a node turns unhealthy, a newcomer stays absent, one ${reason} error is counted each time`, async () => {
    const fake = fakes.get(kind)!;
    const config = testConfig({ SCAN_HOSTS: fake.node, PROBE_TIMEOUT_MS: String(PROBE_TIMEOUT_MS) });
    const store = new MemoryStateStore();
    const monitor = await startMonitor({ config, store, schedule: false, listen: false });
    try {
      await fake.configure({ kind: 'openai' });
      await monitor.scanOnce();
      expect((await nodesById(store))[fake.node]).toMatchObject({ healthy: true });

      await fake.configure({ kind });
      const started = performance.now();
      const report = await monitor.scanOnce();
      const elapsedMs = performance.now() - started;
      expect(report.outcomes).toMatchObject({ node: 0, failed: 1 });
      expect((await nodesById(store))[fake.node]).toMatchObject({
        healthy: false,
        error: expect.stringMatching(new RegExp(`^${reason}: `)),
        models: ['m'], // the last good record is kept as it was, only marked
      });
      expect(await metricValue(monitor.metrics.probeErrors, { reason })).toBe(1);
      expect(await metricValue(monitor.metrics.probeErrors)).toBe(1);
      expect(elapsedMs).toBeLessThan(PROBE_TIMEOUT_MS * 2 + 1000); // bounded, also for the hang

      // A store that never saw this server: nothing is written for it.
      const fresh = new MemoryStateStore();
      const newcomer = await startMonitor({ config, store: fresh, schedule: false, listen: false });
      try {
        await newcomer.scanOnce();
        expect(await fresh.listNodes()).toEqual([]);
        expect(await metricValue(newcomer.metrics.probeErrors, { reason })).toBe(1);
      } finally {
        await newcomer.stop();
        await fresh.close();
      }
    } finally {
      await monitor.stop();
      await store.close();
    }
  });
});

test('the fake servers survived the abuse (the monitor cut off, not the servers)', async () => {
  for (const fake of fakes.values()) expect(fake.child.exitCode).toBeNull();
});
