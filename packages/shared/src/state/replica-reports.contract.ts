import { expect, it } from 'vitest';
import { acquire, LONG_MS, nextEvent, release, type StoreUnderTest } from './contract-harness.ts';
import type { NodeOutcomes, StateStore } from './state-store.ts';

const breaker = (ttlMs = LONG_MS) => ({ threshold: 3, ttlMs });
const failures = (node: string, count: number): NodeOutcomes => ({ node, leadingFailures: count, succeeded: false, trailingFailures: 0 });
const uncapped = [{ node: 'a:1', maxconn: 0 }];

async function circuitOf(store: StateStore, node = 'a:1') {
  return (await store.getCircuits([node]))[node];
}

/**
 * shareInflight: the in-flight counts of attempts a gateway placed without a lease, shared
 * between replicas on a short interval.
 */
export function inflightSharingContract(sut: () => StoreUnderTest): void {
  it("each replica's report counts in getInflight; its own answer leaves its own report out", async () => {
    const { store, peer } = sut();
    const other = await peer();
    await acquire(store, [{ node: 'a:1', maxconn: 5 }]);
    const nodes = ['a:1', 'b:1'];
    expect(await store.shareInflight({ replicaId: 'r1', counts: { 'a:1': 2 }, ttlMs: LONG_MS, nodes })).toEqual({ 'a:1': 1, 'b:1': 0 });
    expect(await other.shareInflight({ replicaId: 'r2', counts: { 'a:1': 3, 'b:1': 1 }, ttlMs: LONG_MS, nodes })).toEqual({
      'a:1': 3,
      'b:1': 0,
    });
    expect(await store.shareInflight({ replicaId: 'r1', counts: { 'a:1': 2 }, ttlMs: LONG_MS, nodes })).toEqual({ 'a:1': 4, 'b:1': 1 });
    expect(await store.getInflight(nodes)).toEqual({ 'a:1': 6, 'b:1': 1 });
  });

  it('a report replaces the previous one; an empty one withdraws it', async () => {
    const { store } = sut();
    const share = (counts: Record<string, number>) => store.shareInflight({ replicaId: 'r1', counts, ttlMs: LONG_MS, nodes: ['a:1'] });
    await share({ 'a:1': 2, 'b:1': 4 });
    expect(await store.getInflight(['a:1', 'b:1'])).toEqual({ 'a:1': 2, 'b:1': 4 });
    await share({ 'a:1': 1 });
    expect(await store.getInflight(['a:1', 'b:1'])).toEqual({ 'a:1': 1, 'b:1': 0 });
    await share({ 'a:1': 0 });
    expect(await store.getInflight(['a:1', 'b:1'])).toEqual({ 'a:1': 0, 'b:1': 0 });
  });

  it('a report counts for its ttl only: a replica that died stops counting by itself', async () => {
    const { store, peer, advance } = sut();
    const other = await peer();
    await store.shareInflight({ replicaId: 'dies', counts: { 'a:1': 7 }, ttlMs: 500, nodes: [] });
    expect(await other.shareInflight({ replicaId: 'lives', counts: {}, ttlMs: LONG_MS, nodes: ['a:1'] })).toEqual({ 'a:1': 7 });
    await advance(700);
    expect(await other.shareInflight({ replicaId: 'lives', counts: {}, ttlMs: LONG_MS, nodes: ['a:1'] })).toEqual({ 'a:1': 0 });
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 0 });
  });

  it('rejects reports that would corrupt the counts', async () => {
    const { store } = sut();
    await expect(store.shareInflight({ replicaId: '', counts: {}, ttlMs: 1, nodes: [] })).rejects.toThrow(/replicaId/);
    await expect(store.shareInflight({ replicaId: 'r', counts: { 'a:1': -1 }, ttlMs: 1, nodes: [] })).rejects.toThrow(/counts/);
    await expect(store.shareInflight({ replicaId: 'r', counts: {}, ttlMs: 0, nodes: [] })).rejects.toThrow(/ttlMs/);
    expect(await store.getInflight(['a:1'])).toEqual({ 'a:1': 0 });
  });
}

/**
 * recordOutcomes: the circuit outcomes of attempts placed without a lease, in batches; the
 * circuit still opens after THRESHOLD failures fleet-wide within one report interval.
 */
export function outcomeBatchContract(sut: () => StoreUnderTest): void {
  it('failures reported by several replicas add up and open the circuit at the threshold', async () => {
    const { store, peer } = sut();
    const other = await peer();
    await store.recordOutcomes([failures('a:1', 2), failures('b:1', 1)], breaker());
    expect(await circuitOf(store)).toMatchObject({ state: 'closed', failures: 2 });
    await other.recordOutcomes([failures('a:1', 1)], breaker());
    expect(await circuitOf(store)).toMatchObject({ state: 'open', failures: 3 });
    expect(await circuitOf(store, 'b:1')).toMatchObject({ state: 'closed', failures: 1 });
    expect(await acquire(store, uncapped)).toMatchObject({ node: null, reason: 'circuit' });
  });

  it('a success resets the count: only the failures after the last success remain', async () => {
    const { store } = sut();
    await store.recordOutcomes([failures('a:1', 1)], breaker());
    await store.recordOutcomes([{ node: 'a:1', leadingFailures: 1, succeeded: true, trailingFailures: 1 }], breaker());
    expect(await circuitOf(store)).toMatchObject({ state: 'closed', failures: 1 });
    await store.recordOutcomes([{ node: 'a:1', leadingFailures: 0, succeeded: true, trailingFailures: 0 }], breaker());
    expect(await circuitOf(store)).toEqual({ state: 'closed', failures: 0, openUntilMs: 0 });
  });

  it('failures before a success that reach the threshold open the circuit; so do enough after it', async () => {
    const { store } = sut();
    await store.recordOutcomes([failures('a:1', 2)], breaker());
    await store.recordOutcomes([{ node: 'a:1', leadingFailures: 1, succeeded: true, trailingFailures: 0 }], breaker());
    expect(await circuitOf(store)).toMatchObject({ state: 'open', failures: 3 });
    await store.recordOutcomes([{ node: 'b:1', leadingFailures: 2, succeeded: true, trailingFailures: 3 }], breaker());
    expect(await circuitOf(store, 'b:1')).toMatchObject({ state: 'open', failures: 3 });
  });

  it('leaves an open or half-open circuit to its probe', async () => {
    const { store, advance } = sut();
    await store.recordOutcomes([failures('a:1', 3)], breaker(1000));
    const openUntil = (await circuitOf(store)).openUntilMs;
    await store.recordOutcomes([{ node: 'a:1', leadingFailures: 0, succeeded: true, trailingFailures: 0 }], breaker());
    await store.recordOutcomes([failures('a:1', 5)], breaker());
    expect(await circuitOf(store)).toMatchObject({ state: 'open', failures: 3, openUntilMs: openUntil });
    await advance(1200);
    await store.recordOutcomes([{ node: 'a:1', leadingFailures: 0, succeeded: true, trailingFailures: 0 }], breaker());
    expect((await circuitOf(store)).state).toBe('half_open');
    const probe = await acquire(store, uncapped);
    expect(probe).toMatchObject({ node: 'a:1', probe: true });
    await release(store, probe, 'success');
    expect(await circuitOf(store)).toMatchObject({ state: 'closed', failures: 0 });
  });

  it('a circuit opened by a batch, by a release or closed by its probe is announced as a fleet change', async () => {
    const { store, peer, listening, advance } = sut();
    const other = await peer();
    const announced = () => nextEvent<void>((listener) => other.onFleetChange(listener));
    let next = announced();
    await listening(other);
    await store.recordOutcomes([failures('a:1', 3)], breaker(50));
    await next;
    next = announced();
    for (let i = 0; i < 3; i++) await release(store, await acquire(store, [{ node: 'b:1', maxconn: 1 }]), 'failure');
    await next;
    await advance(150);
    const probe = await acquire(store, uncapped);
    expect(probe.probe).toBe(true);
    next = announced();
    await release(store, probe, 'success');
    await next;
  });

  it('rejects batches that cannot be applied', async () => {
    const { store } = sut();
    await expect(store.recordOutcomes([failures('a:1', -1)], breaker())).rejects.toThrow(/leadingFailures/);
    await expect(
      store.recordOutcomes([{ node: 'a:1', leadingFailures: 0, succeeded: false, trailingFailures: 2 }], breaker()),
    ).rejects.toThrow(/trailingFailures/);
    await expect(store.recordOutcomes([failures('a:1', 1)], { threshold: 0, ttlMs: 1 })).rejects.toThrow(/threshold/);
    expect(await circuitOf(store)).toEqual({ state: 'closed', failures: 0, openUntilMs: 0 });
  });
}
