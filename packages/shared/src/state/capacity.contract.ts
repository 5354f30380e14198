import { expect, it } from 'vitest';
import { acquire, LONG_MS, nextEvent, release, type StoreUnderTest } from './contract-harness.ts';

/** acquireSlot / renewLeases / releaseSlot / getInflight / onSlotFreed: what every request does. */
export function capacityContract(sut: () => StoreUnderTest): void {
  it('leases exactly maxconn slots, then answers capacity with live counts', async () => {
    const { store } = sut();
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await acquire(store, [{ node: 'a:1', maxconn: 3 }]));
    expect(results.map((r) => r.node)).toEqual(['a:1', 'a:1', 'a:1', null]);
    expect(results.map((r) => r.inflight['a:1'])).toEqual([1, 2, 3, 3]);
    expect(results[3]).toMatchObject({ probe: false, reason: 'capacity' });
    expect(await store.getInflight(['a:1', 'unknown:1'])).toEqual({ 'a:1': 3, 'unknown:1': 0 });
  });

  it('maxconn 0 means no cap, and the leases are still counted', async () => {
    const { store } = sut();
    for (let i = 0; i < 25; i++) expect((await acquire(store, [{ node: 'a:1', maxconn: 0 }])).node).toBe('a:1');
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 25 });
  });

  it('releaseSlot frees the slot for the next request', async () => {
    const { store } = sut();
    const first = await acquire(store, [{ node: 'a:1', maxconn: 1 }]);
    expect((await acquire(store, [{ node: 'a:1', maxconn: 1 }])).node).toBeNull();
    await release(store, first, 'success');
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 0 });
    expect((await acquire(store, [{ node: 'a:1', maxconn: 1 }])).node).toBe('a:1');
  });

  it('releasing an unknown lease is harmless', async () => {
    const { store } = sut();
    await acquire(store, [{ node: 'a:1', maxconn: 2 }]);
    await release(store, { node: 'a:1', leaseId: 'not-mine' }, 'neutral');
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 1 });
  });

  it('an expired lease frees its slot (a replica that died)', async () => {
    const { store, advance } = sut();
    await acquire(store, [{ node: 'a:1', maxconn: 1 }], { leaseMs: 60 });
    await advance(150);
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 0 });
    const next = await acquire(store, [{ node: 'a:1', maxconn: 1 }]);
    expect(next).toMatchObject({ node: 'a:1', inflight: { 'a:1': 1 } });
  });

  it('renewLeases keeps a live lease past its first expiry but never revives an expired one', async () => {
    const { store, advance } = sut();
    // Margins of 250 ms either side: on Redis, advance really waits, on a loaded machine too.
    const kept = await acquire(store, [{ node: 'a:1', maxconn: 0 }], { leaseMs: 600 });
    const lost = await acquire(store, [{ node: 'b:1', maxconn: 0 }], { leaseMs: 50 });
    await advance(350);
    await store.renewLeases(
      [
        { node: 'a:1', leaseId: kept.leaseId },
        { node: 'b:1', leaseId: lost.leaseId },
      ],
      600,
    );
    await advance(350);
    expect(await store.getInflight(['a:1', 'b:1'])).toEqual({ 'a:1': 1, 'b:1': 0 });
    await store.renewLeases([], 400);
  });

  it('in_order takes the first candidate with room; duplicates count once', async () => {
    const { store } = sut();
    const candidates = [
      { node: 'a:1', maxconn: 1 },
      { node: 'a:1', maxconn: 1 },
      { node: 'b:1', maxconn: 1 },
    ];
    const picks = [];
    for (let i = 0; i < 3; i++) picks.push((await acquire(store, candidates)).node);
    expect(picks).toEqual(['a:1', 'b:1', null]);
  });

  it('no candidates: nothing acquired, reason capacity', async () => {
    const { store } = sut();
    expect(await acquire(store, [])).toMatchObject({ node: null, probe: false, reason: 'capacity', inflight: {} });
  });

  it('least_loaded picks the lowest live fill ratio, counting every replica’s leases', async () => {
    const { store, peer } = sut();
    const other = await peer();
    // a: 2 of 10 (0.2), b: 1 of 2 (0.5), c uncapped with 1 (raw count 1).
    await acquire(other, [{ node: 'a:1', maxconn: 10 }]);
    await acquire(other, [{ node: 'a:1', maxconn: 10 }]);
    await acquire(store, [{ node: 'b:1', maxconn: 2 }]);
    await acquire(other, [{ node: 'c:1', maxconn: 0 }]);
    const candidates = [
      { node: 'c:1', maxconn: 0 },
      { node: 'b:1', maxconn: 2 },
      { node: 'a:1', maxconn: 10 },
    ];
    const pick = await acquire(store, candidates, { order: 'least_loaded' });
    expect(pick).toMatchObject({ node: 'a:1', inflight: { 'a:1': 3, 'b:1': 1, 'c:1': 1 } });
  });

  it('least_loaded breaks ties in the given order and never exceeds a cap', async () => {
    const { store } = sut();
    const candidates = [
      { node: 'b:1', maxconn: 2 },
      { node: 'a:1', maxconn: 2 },
    ];
    const picks = [];
    for (let i = 0; i < 5; i++) picks.push((await acquire(store, candidates, { order: 'least_loaded' })).node);
    expect(picks).toEqual(['b:1', 'a:1', 'b:1', 'a:1', null]);
  });

  it('least_loaded adds each candidate’s extraLoad to its live count (requests from outside ai-lb)', async () => {
    const { store, peer } = sut();
    const other = await peer();
    await acquire(other, [{ node: 'a:1', maxconn: 4 }]);
    // a: 1 live of 4; b: none live, but 3 requests the engine runs for someone else.
    const candidates = [
      { node: 'b:1', maxconn: 4, extraLoad: 3 },
      { node: 'a:1', maxconn: 4, extraLoad: 0 },
    ];
    expect((await acquire(store, candidates, { order: 'least_loaded' })).node).toBe('a:1');
    // a: 2 live (0.5) < b: 3 outside (0.75); then a: 3 live (0.75) ties b and b is given first.
    expect((await acquire(store, candidates, { order: 'least_loaded' })).node).toBe('a:1');
    expect((await acquire(store, candidates, { order: 'least_loaded' })).node).toBe('b:1');
    expect(await store.getInflight(['a:1', 'b:1'])).toEqual({ 'a:1': 3, 'b:1': 1 });
  });

  it('least_loaded: a node not busy (live + extraLoad < slots) goes first, then by tier, then by load', async () => {
    const { store } = sut();
    await acquire(store, [{ node: 'a:1', maxconn: 0 }]);
    const candidates = [
      // busy: 1 live + 1 outside reaches its 2 slots, though its tier is the best
      { node: 'a:1', maxconn: 0, slots: 2, extraLoad: 1, tier: 0 },
      // tier 2, idle
      { node: 'b:1', maxconn: 0, slots: 2, tier: 2 },
      // tier 1, idle: first
      { node: 'c:1', maxconn: 0, slots: 4, tier: 1 },
    ];
    const picks = [];
    for (let i = 0; i < 6; i++) picks.push((await acquire(store, candidates, { order: 'least_loaded' })).node);
    // c until busy (4 slots), then b until busy (2), then everyone is busy: by tier, a first.
    expect(picks).toEqual(['c:1', 'c:1', 'c:1', 'c:1', 'b:1', 'b:1']);
    expect((await acquire(store, candidates, { order: 'least_loaded' })).node).toBe('a:1');
  });

  it('least_loaded: an uncapped node is loaded relative to its slots', async () => {
    const { store } = sut();
    await acquire(store, [{ node: 'a:1', maxconn: 0 }]);
    await acquire(store, [{ node: 'a:1', maxconn: 0 }]);
    await acquire(store, [{ node: 'b:1', maxconn: 0 }]);
    // a: 2 of 8 slots (0.25) before b: 1 of 2 (0.5); raw counts would say b.
    const candidates = [
      { node: 'b:1', maxconn: 0, slots: 2 },
      { node: 'a:1', maxconn: 0, slots: 8 },
    ];
    expect((await acquire(store, candidates, { order: 'least_loaded' })).node).toBe('a:1');
  });

  it('ordering hints never change a cap: a busy node with room still takes the request, a full one never does', async () => {
    const { store } = sut();
    const busy = [{ node: 'a:1', maxconn: 2, extraLoad: 50, slots: 1, tier: 9 }];
    expect((await acquire(store, busy, { order: 'least_loaded' })).node).toBe('a:1');
    expect((await acquire(store, busy, { order: 'least_loaded' })).node).toBe('a:1');
    expect(await acquire(store, busy, { order: 'least_loaded' })).toMatchObject({ node: null, reason: 'capacity' });
    await expect(acquire(store, [{ node: 'b:1', maxconn: 1, extraLoad: -1 }], { order: 'least_loaded' })).rejects.toThrow(/extraLoad/);
    await expect(acquire(store, [{ node: 'b:1', maxconn: 1, tier: 0.5 }], { order: 'least_loaded' })).rejects.toThrow(/tier/);
  });

  it('rotate spreads evenly and shares its position with a peer', async () => {
    const { store, peer } = sut();
    const other = await peer();
    const candidates = ['a:1', 'b:1', 'c:1'].map((node) => ({ node, maxconn: 0 }));
    const picks = [];
    for (let i = 0; i < 9; i++) {
      const via = i % 2 === 0 ? store : other;
      picks.push((await acquire(via, candidates, { order: 'rotate', rotateKey: 'model-x' })).node);
    }
    expect(picks).toEqual(['a:1', 'b:1', 'c:1', 'a:1', 'b:1', 'c:1', 'a:1', 'b:1', 'c:1']);
    // Another key has its own position.
    expect((await acquire(store, candidates, { order: 'rotate', rotateKey: 'model-y' })).node).toBe('a:1');
  });

  it('rotate moves past a full node to the next one', async () => {
    const { store } = sut();
    await acquire(store, [{ node: 'b:1', maxconn: 1 }]);
    const candidates = [
      { node: 'a:1', maxconn: 0 },
      { node: 'b:1', maxconn: 1 },
      { node: 'c:1', maxconn: 0 },
    ];
    const picks = [];
    for (let i = 0; i < 3; i++) picks.push((await acquire(store, candidates, { order: 'rotate', rotateKey: 'm' })).node);
    expect(picks).toEqual(['a:1', 'c:1', 'c:1']);
  });

  it('onSlotFreed names the node, on this instance and on a peer', async () => {
    const { store, peer, listening } = sut();
    const other = await peer();
    const here = nextEvent<string>((l) => store.onSlotFreed(l));
    const there = nextEvent<string>((l) => other.onSlotFreed(l));
    await listening(store);
    await listening(other);
    const lease = await acquire(store, [{ node: 'a:1', maxconn: 1 }]);
    await release(store, lease, 'success');
    expect(await here).toBe('a:1');
    expect(await there).toBe('a:1');
  });

  it('rejects malformed requests with an error naming the field', async () => {
    const { store } = sut();
    await expect(acquire(store, [{ node: 'a:1', maxconn: -1 }])).rejects.toThrow(/maxconn/);
    await expect(acquire(store, [{ node: 'a:1', maxconn: 1 }], { leaseMs: 0 })).rejects.toThrow(/leaseMs/);
    await expect(acquire(store, [{ node: 'a:1', maxconn: 1 }], { order: 'rotate' })).rejects.toThrow(/rotateKey/);
    await expect(acquire(store, [{ node: 'a:1', maxconn: 1 }], { sticky: { key: 's', ttlMs: Number.NaN } })).rejects.toThrow(/sticky/);
    await expect(store.renewLeases([], -5)).rejects.toThrow(/leaseMs/);
    await expect(
      store.releaseSlot({ node: 'a:1', leaseId: 'l', outcome: 'failure', probe: false, breaker: { threshold: 0, ttlMs: 1 } }),
    ).rejects.toThrow(/threshold/);
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 0 });
  });

  it('ping resolves while open and rejects after close', async () => {
    const { store } = sut();
    await store.ping();
    await store.close();
    await expect(store.ping()).rejects.toThrow();
  });

  it('keeps leases for LONG_MS when asked (no hidden cap on lease length)', async () => {
    const { store, advance } = sut();
    await acquire(store, [{ node: 'a:1', maxconn: 1 }], { leaseMs: LONG_MS });
    await advance(200);
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 1 });
  });
}
