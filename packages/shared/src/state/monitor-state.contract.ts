import { expect, it } from 'vitest';
import { LONG_MS, nextEvent, nodeState, type StoreUnderTest } from './contract-harness.ts';

/**
 * What lets the fleet survive its monitor: record freshness (listFleet), scan numbers
 * (beginScan / completeScan) and the monitor lease (the heartbeat).
 */
export function monitorStateContract(sut: () => StoreUnderTest): void {
  const ids = async (store: StoreUnderTest['store']) => (await store.listFleet()).nodes.map((n) => [n.state.node, n.freshness]);

  it('a record is fresh for its TTL, on the store clock', async () => {
    const { store } = sut();
    const state = nodeState('n:1', { models: ['m'] });
    await store.putNode(state, LONG_MS, { keepMs: LONG_MS, scan: 0 });
    const fleet = await store.listFleet();
    expect(fleet.nodes).toEqual([{ state, freshness: 'fresh', freshUntilMs: expect.any(Number), scan: 0 }]);
    const left = fleet.nodes[0].freshUntilMs - fleet.nowMs;
    expect(left).toBeLessThanOrEqual(LONG_MS);
    expect(left).toBeGreaterThan(LONG_MS - 5000);
    expect(fleet).toMatchObject({ monitor: null, lastScan: null });
  });

  it('past its TTL a kept record stays, stale, while no newer scan completed (the monitor is gone)', async () => {
    const { store, advance } = sut();
    const scan = await store.beginScan();
    await store.putNode(nodeState('a:1'), 100, { keepMs: LONG_MS, scan });
    await store.putNode(nodeState('b:1'), LONG_MS, { keepMs: LONG_MS, scan });
    await store.completeScan(scan, 'monitor-1');
    await advance(250);
    expect(await ids(store)).toEqual([
      ['a:1', 'stale'],
      ['b:1', 'fresh'],
    ]);
    expect((await store.listNodes()).map((n) => n.node)).toEqual(['a:1', 'b:1']);
  });

  it('a record past its TTL is gone once a newer scan completes without it (the server is gone)', async () => {
    const { store, advance } = sut();
    const first = await store.beginScan();
    await store.putNode(nodeState('a:1'), 100, { keepMs: LONG_MS, scan: first });
    await store.putNode(nodeState('b:1'), 100, { keepMs: LONG_MS, scan: first });
    await store.completeScan(first, 'monitor-1');
    await advance(250);
    const second = await store.beginScan();
    expect(second).toBeGreaterThan(first);
    await store.putNode(nodeState('a:1'), LONG_MS, { keepMs: LONG_MS, scan: second });
    // Until the scan completes, b:1 may still be found later in it.
    expect(await ids(store)).toEqual([
      ['a:1', 'fresh'],
      ['b:1', 'stale'],
    ]);
    await store.completeScan(second, 'monitor-1');
    expect(await ids(store)).toEqual([['a:1', 'fresh']]);
    expect((await store.listNodes()).map((n) => n.node)).toEqual(['a:1']);
    const fleet = await store.listFleet();
    expect(fleet.lastScan).toEqual({ scan: second, monitorId: 'monitor-1', completedAtMs: expect.any(Number) });
    expect(fleet.lastScan!.completedAtMs).toBeLessThanOrEqual(fleet.nowMs);
  });

  it('a record without keepMs expires with its TTL; with it, after TTL + keep', async () => {
    const { store, advance } = sut();
    await store.putNode(nodeState('plain:1'), 100);
    await store.putNode(nodeState('kept:1'), 100, { keepMs: 150 });
    await advance(180);
    expect(await ids(store)).toEqual([['kept:1', 'stale']]);
    await advance(150);
    expect(await ids(store)).toEqual([]);
    expect(await store.listNodes()).toEqual([]);
  });

  it('markNodeUnhealthy keeps freshness, scan and keep time', async () => {
    const { store, advance } = sut();
    await store.putNode(nodeState('n:1'), 100, { keepMs: LONG_MS, scan: 7 });
    const before = (await store.listFleet()).nodes[0];
    await store.markNodeUnhealthy('n:1', 'refused: x', 5);
    await advance(250);
    expect((await store.listFleet()).nodes).toEqual([
      { ...before, state: { ...before.state, healthy: false, error: 'refused: x', checkedAtMs: 5 }, freshness: 'stale' },
    ]);
  });

  it('completeScan never lowers the completed scan, and beginScan stays above every completed one', async () => {
    const { store, peer } = sut();
    const other = await peer();
    const first = await store.beginScan();
    const second = await other.beginScan();
    expect(second).toBeGreaterThan(first);
    await other.completeScan(second, 'monitor-2');
    await store.completeScan(first, 'monitor-1');
    expect((await store.listFleet()).lastScan).toMatchObject({ scan: second, monitorId: 'monitor-2' });
    // A scan number from before Redis restarted empty can be ahead of the counter.
    await store.completeScan(second + 100, 'monitor-1');
    expect(await store.beginScan()).toBeGreaterThan(second + 100);
  });

  it('onFleetChange hears a completed scan', async () => {
    const { store, peer, listening } = sut();
    const other = await peer();
    const event = nextEvent<void>((l) => store.onFleetChange(l));
    await listening(store);
    await other.completeScan(await other.beginScan(), 'monitor-1');
    await event;
  });

  it('bad options are refused', async () => {
    const { store } = sut();
    await expect(store.putNode(nodeState('n:1'), 100, { keepMs: -1 })).rejects.toThrow(/keepMs/);
    await expect(store.putNode(nodeState('n:1'), 100, { keepMs: 1.5 })).rejects.toThrow(/keepMs/);
    await expect(store.putNode(nodeState('n:1'), 100, { scan: -1 })).rejects.toThrow(/scan/);
    await expect(store.completeScan(0, 'm')).rejects.toThrow(/scan/);
    await expect(store.completeScan(1, '')).rejects.toThrow(/monitorId/);
    await expect(store.claimMonitorLease('', 100)).rejects.toThrow(/monitorId/);
    await expect(store.claimMonitorLease('m', 0)).rejects.toThrow(/leaseMs/);
    expect(await store.listNodes()).toEqual([]);
  });

  it('the first monitor takes the lease; another sees it held, from any instance', async () => {
    const { store, peer } = sut();
    const other = await peer();
    const taken = await store.claimMonitorLease('monitor-a', LONG_MS);
    expect(taken).toEqual({ monitorId: 'monitor-a', sinceMs: expect.any(Number), untilMs: expect.any(Number) });
    expect(await other.claimMonitorLease('monitor-b', LONG_MS)).toMatchObject({ monitorId: 'monitor-a', sinceMs: taken.sinceMs });
    const fleet = await other.listFleet();
    expect(fleet.monitor).toMatchObject({ monitorId: 'monitor-a', sinceMs: taken.sinceMs });
    expect(fleet.monitor!.untilMs).toBeGreaterThan(fleet.nowMs);
  });

  it('the holder renews its lease; one nobody renews runs out and the next claimant takes it', async () => {
    const { store, advance } = sut();
    const first = await store.claimMonitorLease('monitor-a', 600);
    await advance(350);
    expect(await store.claimMonitorLease('monitor-a', 600)).toMatchObject({ monitorId: 'monitor-a', sinceMs: first.sinceMs });
    await advance(350);
    expect(await store.claimMonitorLease('monitor-b', 600)).toMatchObject({ monitorId: 'monitor-a' });
    await advance(700);
    expect((await store.listFleet()).monitor).toBeNull();
    const next = await store.claimMonitorLease('monitor-b', 600);
    expect(next.monitorId).toBe('monitor-b');
    expect(next.sinceMs).toBeGreaterThan(first.sinceMs);
  });

  it('releaseMonitorLease frees only the holder’s own lease', async () => {
    const { store } = sut();
    await store.claimMonitorLease('monitor-a', LONG_MS);
    await store.releaseMonitorLease('monitor-b');
    expect((await store.listFleet()).monitor?.monitorId).toBe('monitor-a');
    await store.releaseMonitorLease('monitor-a');
    expect((await store.listFleet()).monitor).toBeNull();
    expect((await store.claimMonitorLease('monitor-b', LONG_MS)).monitorId).toBe('monitor-b');
  });
}
