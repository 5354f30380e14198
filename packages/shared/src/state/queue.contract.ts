import { expect, it } from 'vitest';
import { acquire, LONG_MS, queueLength, release, type StoreUnderTest } from './contract-harness.ts';
import type { QueueTicket } from './state-store.ts';

const ticket = (id: string, overrides: Partial<QueueTicket> = {}): QueueTicket => ({
  key: 'm1',
  ticket: id,
  ttlMs: LONG_MS,
  join: true,
  ...overrides,
});
const one = [{ node: 'a:1', maxconn: 1 }];

/** AcquireSlotRequest.queue, leaveQueue, renewQueueTickets: first come, first served across replicas. */
export function queueContract(sut: () => StoreUnderTest): void {
  it('an empty queue changes nothing; a request that finds no room joins it in the same step', async () => {
    const { store } = sut();
    expect(await acquire(store, one, { queue: ticket('t1') })).toMatchObject({ node: 'a:1', reason: 'ok' });
    expect(await queueLength(store, 'm1')).toBe(0);
    expect(await acquire(store, one, { queue: ticket('t2') })).toMatchObject({ node: null, reason: 'capacity' });
    expect(await queueLength(store, 'm1')).toBe(1);
    // Without join, a full node answers capacity and nobody is queued.
    expect(await acquire(store, one, { queue: ticket('t3', { join: false }) })).toMatchObject({ node: null, reason: 'capacity' });
    expect(await queueLength(store, 'm1')).toBe(1);
  });

  it('a newcomer never overtakes a waiting ticket, also from another replica', async () => {
    const { store, peer } = sut();
    const other = await peer();
    const holder = await acquire(store, one, { queue: ticket('holder') });
    expect((await acquire(store, one, { queue: ticket('early') })).reason).toBe('capacity');
    await release(store, holder, 'success');
    // The slot is free, but 'early' waits for it: the newcomer joins behind it.
    expect(await acquire(other, one, { queue: ticket('late') })).toMatchObject({ node: null, reason: 'capacity' });
    expect(await queueLength(other, 'm1')).toBe(2);
    const early = await acquire(store, one, { queue: ticket('early') });
    expect(early.node).toBe('a:1');
    expect(await queueLength(store, 'm1')).toBe(1);
    expect((await acquire(other, one, { queue: ticket('late') })).node).toBeNull();
    await release(store, early, 'success');
    expect((await acquire(other, one, { queue: ticket('late') })).node).toBe('a:1');
    expect(await queueLength(other, 'm1')).toBe(0);
  });

  it('free slots beyond what the waiting tickets need go to newcomers at once', async () => {
    const { store } = sut();
    const two = [{ node: 'a:1', maxconn: 2 }];
    const held = [await acquire(store, two, { queue: ticket('h1') }), await acquire(store, two, { queue: ticket('h2') })];
    expect((await acquire(store, two, { queue: ticket('waiting') })).reason).toBe('capacity');
    for (const lease of held) await release(store, lease, 'success');
    expect((await acquire(store, two, { queue: ticket('newcomer') })).node).toBe('a:1');
    expect(await queueLength(store, 'm1')).toBe(1);
    expect((await acquire(store, two, { queue: ticket('waiting') })).node).toBe('a:1');
    expect(await queueLength(store, 'm1')).toBe(0);
  });

  it('leaveQueue takes a ticket out of line at once', async () => {
    const { store } = sut();
    const holder = await acquire(store, one, { queue: ticket('holder') });
    await acquire(store, one, { queue: ticket('gave-up') });
    expect(await queueLength(store, 'm1')).toBe(1);
    await store.leaveQueue([
      { key: 'm1', ticket: 'gave-up' },
      { key: 'm1', ticket: 'never-queued' },
    ]);
    await store.leaveQueue([]);
    expect(await queueLength(store, 'm1')).toBe(0);
    await release(store, holder, 'success');
    expect((await acquire(store, one, { queue: ticket('next') })).node).toBe('a:1');
  });

  it('a ticket nobody renews leaves the queue by itself; a renewed one keeps its place', async () => {
    const { store, advance } = sut();
    const holder = await acquire(store, one, { queue: ticket('holder') });
    // 'dead' expires at 500 ms, 'kept' (renewed at 300 ms) at 800 ms or later; the checks
    // run from 600 ms on: on Redis, advance really waits, and a loaded machine adds to it.
    await acquire(store, one, { queue: ticket('kept', { ttlMs: 500 }) });
    await acquire(store, one, { queue: ticket('dead', { ttlMs: 500 }) });
    await advance(300);
    await store.renewQueueTickets([{ key: 'm1', ticket: 'kept' }], 500);
    await advance(300);
    await release(store, holder, 'success');
    // 'kept' still waits ahead of a newcomer, and takes the slot; 'dead' is not in line behind it.
    expect((await acquire(store, one, { queue: ticket('newcomer', { join: false }) })).node).toBeNull();
    expect((await acquire(store, one, { queue: ticket('kept') })).node).toBe('a:1');
    expect(await queueLength(store, 'm1')).toBe(0);
    await store.renewQueueTickets([], 500);
  });

  it('queues are separate per key', async () => {
    const { store } = sut();
    const holder = await acquire(store, one, { queue: ticket('holder') });
    await acquire(store, one, { queue: ticket('waiting') });
    await release(store, holder, 'success');
    expect((await acquire(store, one, { queue: ticket('other-model', { key: 'm2' }) })).node).toBe('a:1');
  });

  it('rejects a malformed ticket with a TypeError naming the field', async () => {
    const { store } = sut();
    await expect(acquire(store, one, { queue: ticket('') })).rejects.toThrow(/queue\.ticket/);
    await expect(acquire(store, one, { queue: ticket('x', { ttlMs: 0 }) })).rejects.toThrow(/queue\.ttlMs/);
    await expect(store.renewQueueTickets([{ key: 'm1', ticket: 'x' }], Number.NaN)).rejects.toThrow(/ttlMs/);
  });
}
