/**
 * One slow scan target must not expire the fleet. The slow server answers /v1/models at
 * once and hangs on every kind probe: without a per-target deadline each scan took
 * 5 × PROBE_TIMEOUT_MS, and with results published only at the end of the scan the
 * healthy node's record ran out between two publishes. Now the slow target costs at most
 * its own deadline, and the healthy node is written as soon as its probe completes.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startFakeLlmServer, type FakeLlmProcess } from '@ai-lb/testkit';
import { startMonitor } from './start-monitor.ts';
import { TARGET_DEADLINE_PROBE_TIMEOUTS } from './probes/probe-node.ts';
import { STORE_KINDS, createTestStore, metricValue, nodesById, testConfig, waitFor } from './testing/monitor-test-env.ts';

const PROBE_TIMEOUT_MS = 800;
/** Several scans: each takes one target deadline (1.6 s) and starts on the next 1 s tick. */
const WATCH_MS = 8000;

let healthy: FakeLlmProcess;
let slow: FakeLlmProcess;

beforeAll(async () => {
  [healthy, slow] = await Promise.all([
    startFakeLlmServer({ kind: 'llamacpp', models: ['fast.gguf'], slots: 2 }),
    startFakeLlmServer({ kind: 'slow-kind-probes', models: ['slow-model'] }),
  ]);
});

afterAll(async () => {
  await Promise.all([healthy?.stop(), slow?.stop()]);
});

describe.each(STORE_KINDS)('with the %s store', (storeKind) => {
  test('a target that hangs on its kind probes never lets a healthy node expire', async () => {
    const store = createTestStore(storeKind);
    const config = testConfig({
      SCAN_HOSTS: `${healthy.node},${slow.node}`,
      SCAN_INTERVAL: '1',
      NODE_TTL_SECS: '3',
      PROBE_TIMEOUT_MS: String(PROBE_TIMEOUT_MS),
    });
    const monitor = await startMonitor({ config, store, listen: false });
    try {
      expect(await waitFor(async () => (await nodesById(store))[healthy.node] !== undefined, 5000, 20)).toBe(true);
      const watchedFrom = performance.now();
      const misses: number[] = [];
      let polls = 0;
      while (performance.now() - watchedFrom < WATCH_MS) {
        polls++;
        if ((await nodesById(store))[healthy.node] === undefined) misses.push(Math.round(performance.now() - watchedFrom));
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(misses).toEqual([]);
      expect(polls).toBeGreaterThan(20);

      // The slow target is still a node, of unknown kind, and its cut is a counted timeout.
      expect((await nodesById(store))[slow.node]).toMatchObject({ kind: 'openai', models: ['slow-model'], healthy: true });
      const scans = await metricValue(monitor.metrics.scans, { outcome: 'ok' });
      expect(scans).toBeGreaterThanOrEqual(3);
      expect(await metricValue(monitor.metrics.probeErrors, { reason: 'timeout' })).toBeGreaterThanOrEqual(scans);
      const { values } = await monitor.metrics.scanDuration.get();
      const sum = values.find((v) => v.metricName === 'ai_lb_monitor_scan_duration_seconds_sum')?.value ?? 0;
      expect(sum / scans).toBeLessThan((TARGET_DEADLINE_PROBE_TIMEOUTS * PROBE_TIMEOUT_MS + 1000) / 1000);
    } finally {
      await monitor.stop();
      await store.close();
    }
  });
});
