import { describe, expect, it } from 'vitest';
import { acquire, nodeState } from './contract-harness.ts';
import { MemoryStateStore } from './memory-state-store.ts';
import { describeStateStoreContract } from './state-store.contract.ts';

function fakeClock(start = 1_800_000_000_000) {
  let now = start;
  return {
    clock: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describeStateStoreContract('memory', async () => {
  const time = fakeClock();
  const store = new MemoryStateStore({ clock: time.clock });
  return {
    store,
    peer: async () => store,
    advance: async (ms) => time.advance(ms),
    listening: async () => undefined,
    close: () => store.close(),
  };
});

describe('MemoryStateStore beyond the contract', () => {
  it('returns copies: a caller mutating a result cannot change the fleet', async () => {
    const store = new MemoryStateStore();
    await store.putNode(nodeState('a:1', { models: ['m'] }), 10_000);
    const [node] = await store.listNodes();
    node.models.push('injected');
    node.healthy = false;
    expect((await store.listNodes())[0]).toMatchObject({ models: ['m'], healthy: true });
  });

  it('a TTL boundary is inclusive, like Redis PX: alive at exactly the expiry ms', async () => {
    const time = fakeClock();
    const store = new MemoryStateStore({ clock: time.clock });
    await store.putNode(nodeState('a:1'), 100);
    await acquire(store, [{ node: 'a:1', maxconn: 1 }], { leaseMs: 100 });
    time.advance(100);
    expect(await store.listNodes()).toHaveLength(1);
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 1 });
    time.advance(1);
    expect(await store.listNodes()).toHaveLength(0);
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 0 });
  });

  it('a throwing listener does not stop the others', async () => {
    const store = new MemoryStateStore();
    const heard: string[] = [];
    store.onSlotFreed(() => {
      throw new Error('listener bug');
    });
    const done = new Promise<void>((resolve) =>
      store.onSlotFreed((node) => {
        heard.push(node);
        resolve();
      }),
    );
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const lease = await acquire(store, [{ node: 'a:1', maxconn: 1 }]);
    await store.releaseSlot({ node: 'a:1', leaseId: lease.leaseId, outcome: 'success', probe: false, breaker: { threshold: 1, ttlMs: 1 } });
    await done;
    await new Promise((r) => setTimeout(r, 10));
    process.off('warning', onWarning);
    expect(heard).toEqual(['a:1']);
    expect(warnings.join()).toMatch(/listener bug/);
  });
});
