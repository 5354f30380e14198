import { MemoryStateStore, RedisStateStore, type CircuitState, type NodeId, type StateStore } from '@ai-lb/shared';
import { setTimeout as sleep } from 'node:timers/promises';
import { uniquePrefix, waitUntil } from '@ai-lb/testkit';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { AcquirePlan } from '../routing/routing-rules.ts';
import { LocalSlots, type FleetView } from './local-slots.ts';
import { SlotReserves } from './slot-reserves.ts';

const redisUrl = inject('redisUrl');
const NODES = ['a:1', 'b:1', 'c:1'];
const breaker = { threshold: 3, ttlMs: 60_000 };

/** What the fleet cache would be: circuits as set by the test, counts as noted. */
function fakeFleet(): FleetView & { circuits: Map<NodeId, CircuitState>; counts: Record<NodeId, number> } {
  const counts: Record<NodeId, number> = {};
  const circuits = new Map<NodeId, CircuitState>();
  return {
    circuits,
    counts,
    circuit: (id) => ({ state: circuits.get(id) ?? 'closed' }),
    inflightOf: (id) => counts[id] ?? 0,
    nodes: () => NODES.map((node) => ({ node })),
    noteInflight: (next) => Object.assign(counts, next),
    noteAcquired: (id) => {
      counts[id] = (counts[id] ?? 0) + 1;
    },
    noteReleased: (id) => {
      counts[id] = Math.max(0, (counts[id] ?? 0) - 1);
    },
  };
}

const plan = (order: AcquirePlan['order'], nodes = NODES, maxconn = 0): AcquirePlan => ({
  candidates: nodes.map((node) => ({ node, maxconn })),
  order,
  rotateKey: order === 'rotate' ? 'm1' : undefined,
});

describe.each(['memory', 'redis'] as const)('LocalSlots with the %s store', (kind) => {
  const opened: Array<{ stop(): void } | StateStore> = [];
  afterEach(async () => {
    for (const item of opened.splice(0).reverse()) await ('close' in item ? item.close() : item.stop());
  });

  /** Two replicas on one shared state (the memory store stands in for Redis in one process). */
  /**
   * A trim gives back a block nothing used since the last one: the reserve tests wait for a
   * block, then use it, and on a loaded machine those steps can be further apart than 20 ms.
   */
  const TRIM_SAFE_INTERVAL_MS = 250;

  function replicas(reportIntervalMs = 20, withReserves = false) {
    const prefix = uniquePrefix('local-slots');
    const memory = new MemoryStateStore();
    const open = (): StateStore => (kind === 'memory' ? memory : new RedisStateStore({ url: redisUrl, keyPrefix: prefix }));
    const make = (id: string) => {
      const store = open();
      const fleet = fakeFleet();
      let leases = 0;
      const keeper = { add: () => undefined, remove: () => undefined };
      const reserves = withReserves ? { leaseMs: 60_000, newLeaseId: () => `${prefix}.${id}.${++leases}`, keeper } : undefined;
      const slots = new LocalSlots(store, fleet, {
        replicaId: id,
        reportIntervalMs,
        breaker,
        clock: Date.now,
        onError: () => undefined,
        reserves,
      });
      slots.start();
      opened.push(store, slots);
      return { store, fleet, slots };
    };
    return [make('r1'), make('r2')] as const;
  }

  it('places only plans the store need not decide: no cap, circuits closed', () => {
    const [{ slots, fleet }] = replicas();
    expect(slots.place(plan('in_order', NODES, 2))).toBeNull();
    fleet.circuits.set('b:1', 'half_open');
    expect(slots.place(plan('in_order'))).toBeNull();
    expect(slots.place(plan('in_order', ['c:1', 'a:1']))?.node).toBe('c:1');
  });

  it('least_loaded takes the first of the least loaded by the cached counts; rotate turns per model', () => {
    const [{ slots, fleet }] = replicas();
    Object.assign(fleet.counts, { 'a:1': 2, 'b:1': 1, 'c:1': 1 });
    expect(slots.place(plan('least_loaded'))?.node).toBe('b:1');
    expect(slots.place(plan('least_loaded'))?.node).toBe('c:1');
    expect(fleet.counts).toMatchObject({ 'b:1': 2, 'c:1': 2 });
    expect([1, 2, 3, 4].map(() => slots.place(plan('rotate'))?.node)).toEqual(['a:1', 'b:1', 'c:1', 'a:1']);
  });

  it("each replica's counts reach the other's cache within a few report intervals, and leave with the attempts", async () => {
    const [one, two] = replicas();
    one.slots.place(plan('in_order', ['a:1']));
    one.slots.place(plan('in_order', ['a:1']));
    two.slots.place(plan('in_order', ['b:1']));
    await waitUntil(() => two.fleet.counts['a:1'] === 2 && one.fleet.counts['b:1'] === 1, { what: 'counts shared' });
    expect(await one.store.getInflight(NODES)).toEqual({ 'a:1': 2, 'b:1': 1, 'c:1': 0 });
    one.slots.release({ node: 'a:1', leaseId: '' }, 'success');
    one.slots.release({ node: 'a:1', leaseId: '' }, 'neutral');
    await waitUntil(() => two.fleet.counts['a:1'] === 0, { what: 'released counts shared' });
    expect(await one.store.getInflight(['a:1'])).toEqual({ 'a:1': 0 });
  });

  it('failures go to the store in the same loop turn: THRESHOLD across replicas open the circuit', async () => {
    // A long interval: only the failure flush can report in time.
    const [one, two] = replicas(60_000);
    for (const [replica, times] of [
      [one, 2],
      [two, 1],
    ] as const) {
      for (let i = 0; i < times; i++) replica.slots.release(replica.slots.place(plan('in_order', ['a:1']))!, 'failure');
    }
    await waitUntil(async () => (await one.store.getCircuits(['a:1']))['a:1'].state === 'open', { what: 'the circuit open' });
    expect((await one.store.getCircuits(['a:1']))['a:1'].failures).toBe(3);
  });

  it('a success between failures resets the run; a node that failed THRESHOLD times here goes to the store', async () => {
    const [{ slots, store }] = replicas();
    const once = (outcome: 'success' | 'failure') => slots.release(slots.place(plan('in_order', ['a:1']))!, outcome);
    once('failure');
    once('failure');
    once('success');
    once('failure');
    await waitUntil(async () => (await store.getCircuits(['a:1']))['a:1'].failures === 1, { what: 'the batch reported' });
    once('failure');
    once('failure');
    // Three in a row here: the store decides for a:1 now, other nodes stay local.
    expect(slots.place(plan('in_order', ['a:1']))).toBeNull();
    expect(slots.place(plan('in_order', ['b:1']))?.node).toBe('b:1');
    await waitUntil(async () => (await store.getCircuits(['a:1']))['a:1'].state === 'open', { what: 'the circuit open' });
  });

  it('a capped node is placed from a reserve the store granted in blocks; counts stay attempts, and idle slots go back', async () => {
    // A report interval long enough that no trim gives an unused block back between two steps here.
    const [{ slots, store, fleet }] = replicas(TRIM_SAFE_INTERVAL_MS, true);
    const capped = plan('in_order', ['a:1'], 64); // blocks of 8, 16 kept free
    expect(slots.place(capped)).toBeNull(); // nothing reserved yet: the store decides, a block is asked for
    // The reserve, not the store's count: the store counts a block before its answer reaches this process.
    await waitUntil(() => slots.idleOf('a:1') === 8, { what: 'a block reserved' });
    const held = [];
    for (let i = 0; i < 6; i++) {
      const lease = slots.place(capped);
      expect(lease).toMatchObject({ node: 'a:1', local: true });
      expect(lease!.leaseId).not.toBe('');
      held.push(lease!);
    }
    // Fewer than half a block idle: the next block came; the cache counts the six attempts only.
    await waitUntil(() => slots.idleOf('a:1') === 10, { what: 'a second block' });
    expect((await store.getInflight(['a:1']))['a:1']).toBe(16);
    // In use, the reserve stays; the counts read back from the store at each share leave its idle slots out.
    for (let i = 0; i < 20; i++) {
      slots.release(slots.place(capped)!, 'success');
      await sleep(5);
    }
    expect(fleet.counts['a:1']).toBe(6);
    expect((await store.getInflight(['a:1']))['a:1']).toBe(16);
    for (const lease of held) slots.release(lease, 'success');
    expect(fleet.counts['a:1']).toBe(0);
    // Unused for a report interval: every idle slot goes back to the store.
    await waitUntil(async () => (await store.getInflight(['a:1']))['a:1'] === 0, { what: 'the reserve given back' });
    expect(slots.idleOf('a:1')).toBe(0);
  });

  it('reserves stop where a quarter of the cap stays free, across replicas; the rest is the store’s, one attempt at a time', async () => {
    const [one, two] = replicas(20, true);
    const capped = plan('in_order', ['a:1'], 32); // blocks of 4, 8 kept free
    const placed = [];
    for (let i = 0; i < 60; i++) {
      for (const replica of [one, two]) {
        const lease = replica.slots.place(capped);
        if (lease !== null) placed.push(lease);
      }
      await sleep(2);
    }
    expect(placed.length).toBeGreaterThan(8);
    expect((await one.store.getInflight(['a:1']))['a:1']).toBeLessThanOrEqual(24);
    // The store hands out what is left and not one slot more.
    const results = [];
    for (let i = 0; i < 40; i++)
      results.push((await one.store.acquireSlot({ ...capped, leaseId: `x${i}`, leaseMs: 60_000, probeLeaseMs: 1000 })).node);
    expect((await one.store.getInflight(['a:1']))['a:1']).toBe(32);
    expect(results.filter((node) => node !== null).length + placed.length).toBeLessThanOrEqual(32);
  });

  it('caps under 16 are never reserved; a circuit that is not closed sends the idle reserve back', async () => {
    const [{ slots, store, fleet }] = replicas(TRIM_SAFE_INTERVAL_MS, true);
    expect(slots.place(plan('in_order', ['b:1'], 15))).toBeNull();
    expect(slots.place(plan('in_order', ['a:1'], 64))).toBeNull();
    await waitUntil(() => slots.idleOf('a:1') === 8, { what: 'a block reserved' });
    const lease = slots.place(plan('in_order', ['a:1'], 64))!;
    expect(lease).toMatchObject({ node: 'a:1' });
    expect(await store.getInflight(['a:1', 'b:1'])).toEqual({ 'a:1': 8, 'b:1': 0 });
    fleet.circuits.set('a:1', 'open');
    await waitUntil(async () => (await store.getInflight(['a:1']))['a:1'] === 1, { what: 'the idle slots given back' });
    expect(slots.place(plan('in_order', ['a:1'], 64))).toBeNull();
    slots.release(lease, 'failure');
    expect(slots.idleOf('a:1')).toBe(1);
    await waitUntil(async () => (await store.getInflight(['a:1']))['a:1'] === 0, { what: 'the last slot given back' });
  });
});

describe('SlotReserves.trim, one trim at a time', () => {
  it('keeps a reserve used since the last trim; gives every idle slot back at once when its node may not be placed on', async () => {
    const store = new MemoryStateStore();
    let leases = 0;
    const reserves = new SlotReserves(store, fakeFleet(), {
      leaseMs: 60_000,
      newLeaseId: () => `lease.${++leases}`,
      keeper: { add: () => undefined, remove: () => undefined },
      retryMs: 1000,
      clock: Date.now,
      onError: () => undefined,
    });
    expect(reserves.take('a:1', 64)).toBeNull(); // nothing reserved yet: a block of 8 is asked for
    await waitUntil(() => reserves.idleOf('a:1') === 8, { what: 'a block reserved' });
    expect(reserves.take('a:1', 64)).not.toBeNull();
    reserves.trim(() => true);
    expect(reserves.idleOf('a:1')).toBe(7);
    expect(reserves.take('a:1', 64)).not.toBeNull();
    reserves.trim(() => false); // e.g. its circuit opened: used or not, nothing idle is kept
    expect(reserves.idleOf('a:1')).toBe(0);
    await waitUntil(async () => (await store.getInflight(['a:1']))['a:1'] === 2, { what: 'the idle slots in the store' });
    reserves.stop();
  });
});
