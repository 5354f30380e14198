import { expect, it } from 'vitest';
import { collect, LONG_MS, nextEvent, nodeState, sleep, type StoreUnderTest } from './contract-harness.ts';

/** putNode / markNodeUnhealthy / listNodes / onFleetChange: what the monitor writes. */
export function fleetContract(sut: () => StoreUnderTest): void {
  it('putNode stores the whole record and listNodes returns it, sorted by node id', async () => {
    const { store } = sut();
    const b = nodeState('10.0.0.2:8080', { models: ['llama-3', 'qwen'], maxconn: 4, serverLoad: { running: 1, waiting: 0 } });
    const a = nodeState('10.0.0.1:11434', { kind: 'ollama', models: ['émoji-🦙'], latencyMs: 3.25 });
    await store.putNode(b, LONG_MS);
    await store.putNode(a, LONG_MS);
    expect(await store.listNodes()).toEqual([a, b]);
  });

  it('putNode replaces the previous record of the same node', async () => {
    const { store } = sut();
    await store.putNode(nodeState('n:1', { models: ['old'] }), LONG_MS);
    await store.putNode(nodeState('n:1', { models: ['new'], maxconn: 2 }), LONG_MS);
    const nodes = await store.listNodes();
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({ models: ['new'], maxconn: 2 });
  });

  it('a node record expires after its TTL; others stay', async () => {
    const { store, advance } = sut();
    await store.putNode(nodeState('short:1'), 50);
    await store.putNode(nodeState('long:1'), LONG_MS);
    await advance(150);
    expect((await store.listNodes()).map((n) => n.node)).toEqual(['long:1']);
  });

  it('a refreshed node lives past its first TTL', async () => {
    const { store, advance } = sut();
    await store.putNode(nodeState('n:1'), 400);
    await advance(250);
    await store.putNode(nodeState('n:1'), 400);
    await advance(250);
    expect((await store.listNodes()).map((n) => n.node)).toEqual(['n:1']);
  });

  it('markNodeUnhealthy flags the node and keeps every other field', async () => {
    const { store } = sut();
    const original = nodeState('n:1', { models: [], loadedModels: [], latencyMs: 1.234567, detectedMaxconn: 8 });
    await store.putNode(original, LONG_MS);
    await store.markNodeUnhealthy('n:1', 'connect ECONNREFUSED "quoted"', 1_700_000_123_456);
    expect(await store.listNodes()).toEqual([
      { ...original, healthy: false, error: 'connect ECONNREFUSED "quoted"', checkedAtMs: 1_700_000_123_456 },
    ]);
  });

  it('markNodeUnhealthy keeps the remaining TTL, so a dead node leaves by itself', async () => {
    const { store, advance } = sut();
    await store.putNode(nodeState('n:1'), 300);
    await store.markNodeUnhealthy('n:1', 'timeout', 1);
    expect((await store.listNodes()).map((n) => n.healthy)).toEqual([false]);
    await advance(400);
    expect(await store.listNodes()).toEqual([]);
  });

  it('markNodeUnhealthy is a no-op for an unknown or expired node (no record, no event)', async () => {
    const { store, advance, listening } = sut();
    await store.putNode(nodeState('gone:1'), 50);
    await advance(150);
    const events = collect<void>((l) => store.onFleetChange(l));
    await listening(store);
    await store.markNodeUnhealthy('never:1', 'x', 1);
    await store.markNodeUnhealthy('gone:1', 'x', 1);
    expect(await store.listNodes()).toEqual([]);
    await sleep(50);
    events.stop();
    expect(events.values).toHaveLength(0);
  });

  it('onFleetChange hears putNode and markNodeUnhealthy, from this instance and a peer', async () => {
    const { store, peer, listening } = sut();
    const other = await peer();
    const events = collect<void>((l) => store.onFleetChange(l));
    await listening(store);
    const afterPut = nextEvent<void>((l) => store.onFleetChange(l));
    await other.putNode(nodeState('n:1'), LONG_MS);
    await afterPut;
    const afterMark = nextEvent<void>((l) => store.onFleetChange(l));
    await store.markNodeUnhealthy('n:1', 'x', 1);
    await afterMark;
    events.stop();
    expect(events.values).toHaveLength(2);
  });

  it('listeners are called asynchronously, never inside the writer’s call', async () => {
    const { store, listening } = sut();
    let calledDuringPut = false;
    let inPut = false;
    const stop = store.onFleetChange(() => (calledDuringPut ||= inPut));
    await listening(store);
    const event = nextEvent<void>((l) => store.onFleetChange(l));
    inPut = true;
    const put = store.putNode(nodeState('n:1'), LONG_MS);
    inPut = false;
    await put;
    await event;
    stop();
    expect(calledDuringPut).toBe(false);
  });

  it('an unsubscribed listener hears nothing more', async () => {
    const { store, listening } = sut();
    const events = collect<void>((l) => store.onFleetChange(l));
    await listening(store);
    events.stop();
    const witness = nextEvent<void>((l) => store.onFleetChange(l));
    await store.putNode(nodeState('n:1'), LONG_MS);
    await witness;
    expect(events.values).toHaveLength(0);
  });

  it('putNode rejects a bad TTL or a record without node id', async () => {
    const { store } = sut();
    await expect(store.putNode(nodeState('n:1'), 0)).rejects.toThrow(/ttlMs/);
    await expect(store.putNode({ ...nodeState('n:1'), node: '' }, LONG_MS)).rejects.toThrow(/node/);
    expect(await store.listNodes()).toEqual([]);
  });
}
