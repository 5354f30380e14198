import { expect, it } from 'vitest';
import { acquire, LONG_MS, release, type StoreUnderTest } from './contract-harness.ts';

const A = [{ node: 'a:1', maxconn: 0 }];
const breaker = (ttlMs = LONG_MS) => ({ threshold: 3, ttlMs });

async function fail(sut: StoreUnderTest, times: number, ttlMs = LONG_MS): Promise<void> {
  for (let i = 0; i < times; i++) await release(sut.store, await acquire(sut.store, A), 'failure', breaker(ttlMs));
}

/** The circuit breaker inside acquireSlot / releaseSlot, and getCircuits. */
export function circuitContract(sut: () => StoreUnderTest): void {
  it('a node never seen is closed with 0 failures', async () => {
    expect(await sut().store.getCircuits(['x:1'])).toEqual({ 'x:1': { state: 'closed', failures: 0, openUntilMs: 0 } });
  });

  it('counts consecutive failures and opens at the threshold', async () => {
    const s = sut();
    await fail(s, 2);
    expect((await s.store.getCircuits(['a:1']))['a:1']).toMatchObject({ state: 'closed', failures: 2 });
    expect((await acquire(s.store, A)).node).toBe('a:1');
    await fail(s, 1);
    const circuit = (await s.store.getCircuits(['a:1']))['a:1'];
    expect(circuit).toMatchObject({ state: 'open', failures: 3 });
    expect(circuit.openUntilMs).toBeGreaterThan(0);
    expect(await acquire(s.store, A)).toMatchObject({ node: null, reason: 'circuit', probe: false });
  });

  it('a success resets the count; neutral outcomes leave it alone', async () => {
    const s = sut();
    await fail(s, 2);
    await release(s.store, await acquire(s.store, A), 'neutral', breaker());
    expect((await s.store.getCircuits(['a:1']))['a:1'].failures).toBe(2);
    await release(s.store, await acquire(s.store, A), 'success', breaker());
    expect(await s.store.getCircuits(['a:1'])).toEqual({ 'a:1': { state: 'closed', failures: 0, openUntilMs: 0 } });
  });

  it('an open circuit is skipped for the next candidate; reason capacity wins over circuit', async () => {
    const s = sut();
    await fail(s, 3);
    expect((await acquire(s.store, [...A, { node: 'b:1', maxconn: 1 }])).node).toBe('b:1');
    expect(await acquire(s.store, [...A, { node: 'b:1', maxconn: 1 }])).toMatchObject({ node: null, reason: 'capacity' });
  });

  it('half-open lets exactly one probe through; its success closes the circuit', async () => {
    const s = sut();
    await fail(s, 3, 50);
    await s.advance(150);
    expect((await s.store.getCircuits(['a:1']))['a:1'].state).toBe('half_open');
    const other = await s.peer();
    const probe = await acquire(s.store, A);
    expect(probe).toMatchObject({ node: 'a:1', probe: true });
    expect(await acquire(other, A)).toMatchObject({ node: null, reason: 'circuit' });
    expect(await acquire(s.store, A)).toMatchObject({ node: null, reason: 'circuit' });
    await release(s.store, probe, 'success', breaker());
    expect((await s.store.getCircuits(['a:1']))['a:1']).toMatchObject({ state: 'closed', failures: 0 });
    expect(await acquire(other, A)).toMatchObject({ node: 'a:1', probe: false });
  });

  it('a failed probe re-opens the circuit for another ttl', async () => {
    const s = sut();
    await fail(s, 3, 50);
    await s.advance(150);
    const probe = await acquire(s.store, A);
    expect(probe.probe).toBe(true);
    await release(s.store, probe, 'failure', breaker(LONG_MS));
    expect((await s.store.getCircuits(['a:1']))['a:1']).toMatchObject({ state: 'open', failures: 4 });
    expect(await acquire(s.store, A)).toMatchObject({ node: null, reason: 'circuit' });
  });

  it('a probe that never reports back blocks others only for probeLeaseMs', async () => {
    const s = sut();
    await fail(s, 3, 50);
    await s.advance(150);
    expect(await acquire(s.store, A, { probeLeaseMs: 50 })).toMatchObject({ probe: true });
    await s.advance(150);
    expect(await acquire(s.store, A)).toMatchObject({ node: 'a:1', probe: true });
  });

  it('a neutral probe frees the probe turn but leaves the circuit half-open', async () => {
    const s = sut();
    await fail(s, 3, 50);
    await s.advance(150);
    const probe = await acquire(s.store, A);
    await release(s.store, probe, 'neutral', breaker());
    expect((await s.store.getCircuits(['a:1']))['a:1'].state).toBe('half_open');
    expect(await acquire(s.store, A)).toMatchObject({ node: 'a:1', probe: true });
  });

  it('a full half-open node does not take the probe turn', async () => {
    const s = sut();
    const capped = [{ node: 'a:1', maxconn: 1 }];
    const held = await acquire(s.store, capped);
    await fail(s, 3, 50);
    await s.advance(150);
    expect(await acquire(s.store, capped)).toMatchObject({ node: null, reason: 'capacity' });
    await release(s.store, held, 'neutral', breaker());
    expect(await acquire(s.store, capped)).toMatchObject({ node: 'a:1', probe: true });
  });
}

/** Sticky sessions inside acquireSlot. */
export function stickyContract(sut: () => StoreUnderTest): void {
  const AB = [
    { node: 'a:1', maxconn: 1 },
    { node: 'b:1', maxconn: 1 },
  ];

  it('tries the session’s node first, then re-points the session when it is full', async () => {
    const { store } = sut();
    const sticky = { key: 'm1:session-1', ttlMs: LONG_MS };
    await release(store, await acquire(store, [AB[1]], { sticky }), 'success');
    const first = await acquire(store, AB, { sticky });
    expect(first.node).toBe('b:1');
    expect((await acquire(store, AB, { sticky })).node).toBe('a:1');
    await release(store, first, 'success');
    // b has room again, but the session was re-pointed at a (which still has room): a.
    expect((await acquire(store, [AB[1], { node: 'a:1', maxconn: 2 }], { sticky })).node).toBe('a:1');
  });

  it('a session whose node is not a candidate is routed normally and moves', async () => {
    const { store } = sut();
    const sticky = { key: 'm1:s', ttlMs: LONG_MS };
    await acquire(store, [{ node: 'gone:1', maxconn: 0 }], { sticky });
    expect(
      (
        await acquire(
          store,
          [
            { node: 'a:1', maxconn: 0 },
            { node: 'b:1', maxconn: 0 },
          ],
          { sticky },
        )
      ).node,
    ).toBe('a:1');
    expect(
      (
        await acquire(
          store,
          [
            { node: 'b:1', maxconn: 0 },
            { node: 'a:1', maxconn: 0 },
          ],
          { sticky },
        )
      ).node,
    ).toBe('a:1');
  });

  it('sticky beats rotate and least_loaded, and sessions are independent', async () => {
    const { store } = sut();
    const nodes = [
      { node: 'a:1', maxconn: 0 },
      { node: 'b:1', maxconn: 0 },
    ];
    await acquire(store, [nodes[1]], { sticky: { key: 's1', ttlMs: LONG_MS } });
    for (let i = 0; i < 3; i++) {
      const rotate = await acquire(store, nodes, { order: 'rotate', rotateKey: 'm', sticky: { key: 's1', ttlMs: LONG_MS } });
      expect(rotate.node).toBe('b:1');
    }
    const least = await acquire(store, nodes, { order: 'least_loaded', sticky: { key: 's1', ttlMs: LONG_MS } });
    expect(least.node).toBe('b:1');
    expect((await acquire(store, nodes, { sticky: { key: 's2', ttlMs: LONG_MS } })).node).toBe('a:1');
  });

  it('a session expires after its ttl', async () => {
    const { store, advance } = sut();
    await acquire(store, [{ node: 'b:1', maxconn: 0 }], { sticky: { key: 's', ttlMs: 50 } });
    await advance(150);
    const nodes = [
      { node: 'a:1', maxconn: 0 },
      { node: 'b:1', maxconn: 0 },
    ];
    expect((await acquire(store, nodes, { sticky: { key: 's', ttlMs: 50 } })).node).toBe('a:1');
  });
}
