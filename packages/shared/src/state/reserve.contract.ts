import { expect, it } from 'vitest';
import { acquire, LONG_MS, nextEvent, release, sleep, type StoreUnderTest } from './contract-harness.ts';
import type { ReserveSlotsRequest } from './state-store.ts';

const ids = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}.${i}`);
const reserve = (overrides: Partial<ReserveSlotsRequest> & { leaseIds: string[] }): ReserveSlotsRequest => ({
  node: 'a:1',
  maxconn: 10,
  keepFree: 3,
  leaseMs: LONG_MS,
  ...overrides,
});

/** reserveSlots / returnSlots: slots a replica leases ahead and hands out itself. */
export function reserveContract(sut: () => StoreUnderTest): void {
  it('leases as many as leave keepFree free, across replicas, and the reserve counts against the cap', async () => {
    const { store, peer } = sut();
    const other = await peer();
    expect(await store.reserveSlots(reserve({ leaseIds: ids('r1', 4) }))).toEqual({ granted: 4, inflight: 4 });
    expect(await other.reserveSlots(reserve({ leaseIds: ids('r2', 4) }))).toEqual({ granted: 3, inflight: 7 });
    expect(await store.reserveSlots(reserve({ leaseIds: ids('r3', 4) }))).toEqual({ granted: 0, inflight: 7 });
    // The three slots left are anyone's; the reserved seven are taken.
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await acquire(other, [{ node: 'a:1', maxconn: 10 }]));
    expect(results.map((r) => r.node)).toEqual(['a:1', 'a:1', 'a:1', null]);
    expect(results[3]).toMatchObject({ reason: 'capacity', inflight: { 'a:1': 10 } });
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 10 });
  });

  it('returnSlots frees reserved slots and announces the node; unknown leases are harmless', async () => {
    const s = sut();
    const { store } = s;
    await store.reserveSlots(reserve({ leaseIds: ids('r', 5), keepFree: 0 }));
    const freed = nextEvent<string>((listener) => store.onSlotFreed(listener));
    await s.listening(store);
    await store.returnSlots([
      { node: 'a:1', leaseId: 'r.0' },
      { node: 'a:1', leaseId: 'r.1' },
      { node: 'a:1', leaseId: 'not-mine' },
    ]);
    expect(await freed).toBe('a:1');
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 3 });
    await store.returnSlots([]);
    expect((await store.reserveSlots(reserve({ leaseIds: ids('again', 9), keepFree: 0 }))).granted).toBe(7);
  });

  it('no reserve through an open or half-open circuit; a closed one gives again', async () => {
    const { store, advance } = sut();
    const A = [{ node: 'a:1', maxconn: 10 }];
    const breaker = { threshold: 1, ttlMs: 200 };
    await release(store, await acquire(store, A), 'failure', breaker);
    expect(await store.reserveSlots(reserve({ leaseIds: ids('open', 2) }))).toEqual({ granted: 0, inflight: 0 });
    await advance(300);
    expect((await store.reserveSlots(reserve({ leaseIds: ids('half-open', 2) }))).granted).toBe(0);
    const probe = await acquire(store, A);
    expect(probe).toMatchObject({ node: 'a:1', probe: true });
    await release(store, probe, 'success', breaker);
    expect((await store.reserveSlots(reserve({ leaseIds: ids('closed', 2) }))).granted).toBe(2);
  });

  it('a reserve nobody renews lapses; renewLeases keeps it', async () => {
    const { store, advance } = sut();
    await store.reserveSlots(reserve({ leaseIds: ids('kept', 2), leaseMs: 600 }));
    await store.reserveSlots(reserve({ node: 'b:1', leaseIds: ids('lost', 2), leaseMs: 50 }));
    await advance(350);
    await store.renewLeases(
      ids('kept', 2).map((leaseId) => ({ node: 'a:1', leaseId })),
      600,
    );
    await advance(350);
    expect(await store.getInflight(['a:1', 'b:1'])).toEqual({ 'a:1': 2, 'b:1': 0 });
  });

  it('refuses a request it cannot keep, naming the field', async () => {
    const { store } = sut();
    await expect(store.reserveSlots(reserve({ maxconn: 0, keepFree: 0, leaseIds: ['x'] }))).rejects.toThrow(/maxconn/);
    await expect(store.reserveSlots(reserve({ keepFree: 11, leaseIds: ['x'] }))).rejects.toThrow(/keepFree/);
    await expect(store.reserveSlots(reserve({ leaseIds: [] }))).rejects.toThrow(/leaseIds/);
    await expect(store.reserveSlots(reserve({ leaseIds: [''] }))).rejects.toThrow(/leaseIds/);
    await expect(store.reserveSlots(reserve({ leaseMs: 0, leaseIds: ['x'] }))).rejects.toThrow(/leaseMs/);
    await sleep(0);
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 0 });
  });
}
