/**
 * The monitor's side of "the fleet survives its monitor", with both stores: records it
 * wrote stay (stale) while no monitor scans; a monitor that comes back does not drop them
 * before its first scan has looked at every target, and after that scan a server that
 * died in the meantime is gone. Two monitors: one scans, the other stands by and takes
 * over when the first stops. (Killing a monitor process: monitor-failover.test.ts.)
 */
import { afterEach, describe, expect, test } from 'vitest';
import { startFakeLlmServer, type FakeLlmProcess } from '@ai-lb/testkit';
import type { FleetSnapshot, StateStore } from '@ai-lb/shared';
import { startMonitor, type MonitorHandle } from './start-monitor.ts';
import { STORE_KINDS, createTestStore, metricValue, testConfig, waitFor } from './testing/monitor-test-env.ts';

describe.each(STORE_KINDS)('with the %s store', (storeKind) => {
  const fakes: FakeLlmProcess[] = [];
  const monitors: MonitorHandle[] = [];
  let store: StateStore;

  afterEach(async () => {
    await Promise.all(monitors.splice(0).map((m) => m.stop()));
    await Promise.all(fakes.splice(0).map((f) => f.stop()));
    await store?.close();
  });

  const freshnessOf = (fleet: FleetSnapshot, node: string) => fleet.nodes.find((n) => n.state.node === node)?.freshness ?? 'absent';

  async function start(monitorId: string, env: Record<string, string>): Promise<MonitorHandle> {
    const monitor = await startMonitor({ config: testConfig({ SCAN_INTERVAL: '1', ...env }), store, monitorId });
    monitors.push(monitor);
    return monitor;
  }

  test('records outlive a stopped monitor as stale; its successor keeps them until its first scan, which drops the dead one', async () => {
    store = createTestStore(storeKind);
    const [alive, dying] = await Promise.all([
      startFakeLlmServer({ kind: 'llamacpp', models: ['a.gguf'] }),
      startFakeLlmServer({ kind: 'openai', models: ['m'] }),
    ]);
    fakes.push(alive, dying);
    const env = { SCAN_HOSTS: `${alive.node},${dying.node}`, NODE_TTL_SECS: '1' };

    const first = await start('monitor-a', env);
    const bothFresh = async () => {
      const fleet = await store.listFleet();
      return freshnessOf(fleet, alive.node) === 'fresh' && freshnessOf(fleet, dying.node) === 'fresh';
    };
    expect(await waitFor(bothFresh, 10_000)).toBe(true);
    await first.stop();
    monitors.splice(monitors.indexOf(first), 1);

    const bothStale = async () => {
      const fleet = await store.listFleet();
      return fleet.monitor === null && freshnessOf(fleet, alive.node) === 'stale' && freshnessOf(fleet, dying.node) === 'stale';
    };
    expect(await waitFor(bothStale, 5000)).toBe(true);
    expect((await store.listNodes()).map((n) => n.node).sort()).toEqual([alive.node, dying.node].sort());
    await dying.stop();

    const absences: string[] = [];
    let done = false;
    const watch = (async () => {
      while (!done) {
        if (!(await store.listNodes()).some((n) => n.node === alive.node)) absences.push('alive node absent');
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await start('monitor-b', env);
    const scanned = await waitFor(async () => (await store.listFleet()).lastScan?.monitorId === 'monitor-b', 10_000);
    done = true;
    await watch;
    expect(scanned).toBe(true);
    const fleet = await store.listFleet();
    expect(freshnessOf(fleet, alive.node)).toBe('fresh');
    expect(freshnessOf(fleet, dying.node)).toBe('absent');
    expect(fleet.monitor?.monitorId).toBe('monitor-b');
    expect(absences).toEqual([]);
  });

  test('two monitors: the lease holder scans, the other stands by and takes over when it stops', async () => {
    store = createTestStore(storeKind);
    const fake = await startFakeLlmServer({ kind: 'openai', models: ['m'] });
    fakes.push(fake);
    const env = { SCAN_HOSTS: fake.node };
    const holder = await start('monitor-a', env);
    const standby = await start('monitor-b', env);

    expect(await waitFor(async () => (await metricValue(holder.metrics.scans, { outcome: 'ok' })) >= 2, 10_000)).toBe(true);
    expect(await metricValue(standby.metrics.scans)).toBe(0);
    expect(await metricValue(holder.metrics.leaseHeld)).toBe(1);
    expect(await metricValue(standby.metrics.leaseHeld)).toBe(0);
    const health = await fetch(`http://127.0.0.1:${standby.port}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'standby', holder: 'monitor-a' });
    expect((await store.listFleet()).lastScan?.monitorId).toBe('monitor-a');

    // A graceful stop frees the lease: the standby need not wait for it to run out.
    const stoppedAt = performance.now();
    await holder.stop();
    monitors.splice(monitors.indexOf(holder), 1);
    expect(await waitFor(async () => (await store.listFleet()).lastScan?.monitorId === 'monitor-b', 5000)).toBe(true);
    expect(performance.now() - stoppedAt).toBeLessThan(3000);
    expect(await metricValue(standby.metrics.leaseHeld)).toBe(1);
    expect((await fetch(`http://127.0.0.1:${standby.port}/health`)).status).toBe(200);
  });
});
