/**
 * A realistic sweep: 127.0.0.0/22 × 2 ports = 2044 targets, all refused but one fake
 * server. Refused connections on loopback are instant, so the bound is concurrency and
 * per-connection cost, not timeouts. The measured time goes into the README.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { freePort, startFakeLlmServer, type FakeLlmProcess } from '@ai-lb/testkit';
import { systemClock } from '@ai-lb/shared';
import { expandTargets } from './targets.ts';
import { runScan } from './run-scan.ts';
import { createProbeClient } from '../probes/probe-client.ts';
import { createCapacityResolver } from '../resolve-capacity.ts';
import { createMonitorMetrics } from '../metrics.ts';
import { testConfig } from '../testing/monitor-test-env.ts';

/** Measured ~1 s on the 2-core CI box; the bound leaves room for a loaded machine. */
const BOUND_MS = 8000;

let fake: FakeLlmProcess;
beforeAll(async () => {
  fake = await startFakeLlmServer({ kind: 'ollama', models: ['llama3:latest'] });
});
afterAll(async () => {
  await fake?.stop();
});

test(`127.0.0.0/22 × 2 ports (2044 targets, mostly refused) is scanned within ${BOUND_MS} ms`, async () => {
  const otherPort = await freePort();
  const config = testConfig({ SCAN_HOSTS: '127.0.0.0/22', SCAN_PORTS: `${fake.port},${otherPort}` });
  const targets = expandTargets(config.scanHosts, config.scanPorts);
  expect(targets).toHaveLength(2044);
  const client = createProbeClient({ timeoutMs: config.probeTimeoutMs });
  try {
    const report = await runScan({
      client,
      targets,
      concurrency: config.scanConcurrency,
      resolveCapacity: createCapacityResolver(config),
      metrics: createMonitorMetrics(),
      clock: systemClock,
      ttlMs: config.nodeTtlMs,
    });
    console.info(`scan of ${report.targets} targets (concurrency ${config.scanConcurrency}): ${Math.round(report.durationMs)} ms`);
    // The fake listens on 127.0.0.1 only: every other 127.x address refuses its port.
    expect(report.nodes.filter((n) => n.port === fake.port).map((n) => n.node)).toEqual([fake.node]);
    expect(report.outcomes.closed).toBeGreaterThanOrEqual(2042);
    expect(report.outcomes.failed).toBe(0);
    expect(report.durationMs).toBeLessThan(BOUND_MS);
  } finally {
    await client.close();
  }
});
