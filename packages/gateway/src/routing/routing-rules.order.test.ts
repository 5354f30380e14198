import { describe, expect, test } from 'vitest';
import { DEFAULT_NODE_PRIORITY, type EngineLoadReading } from '@ai-lb/shared';
import { acquirePlan } from '@ai-lb/shared/state/slot-rules.ts';
import { HashRingCache } from './hash-ring.ts';
import { COLD_TIER, p2cExtraCost, planAcquire, rotateAfter, shuffle, type PlanContext, type RoutingCandidate } from './routing-rules.ts';

const cand = (node: string, over: Partial<RoutingCandidate> = {}): RoutingCandidate => ({
  node,
  maxconn: 4,
  slots: 4,
  inflight: 0,
  engine: null,
  warm: null,
  priority: DEFAULT_NODE_PRIORITY,
  latencyMs: 100,
  failures: 0,
  hints: { extraLoad: 0, slots: 4 },
  ...over,
});
const fleet = [cand('a:1'), cand('b:1'), cand('c:1')];
const reading = (over: Partial<EngineLoadReading>): EngineLoadReading => ({
  node: 'x',
  running: 0,
  waiting: 0,
  kvCacheUsage: null,
  loadedModels: null,
  at: 0,
  ...over,
});
const ctx = (over: Partial<PlanContext> = {}): PlanContext => ({
  strategy: 'LEAST_LOADED',
  rotateKey: 'm',
  previousNode: null,
  random: Math.random,
  ...over,
});

/**
 * Where `count` requests that all planned on the same cache snapshot land when the store
 * applies each plan in turn on live counts (slot-rules.ts, what both stores run).
 */
function landings(candidates: readonly RoutingCandidate[], count: number, over: Partial<PlanContext> = {}): string[] {
  const live = new Map<string, number>();
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const plan = planAcquire(candidates, ctx(over));
    const inflight = plan.candidates.map((c) => live.get(c.node) ?? 0);
    const order = acquirePlan({ candidates: plan.candidates, order: plan.order, inflight, rotateCounter: i + 1, stickyNode: null });
    const pick = order.map((k) => plan.candidates[k]).find((c) => c.maxconn === 0 || (live.get(c.node) ?? 0) < c.maxconn);
    if (pick === undefined) break;
    live.set(pick.node, (live.get(pick.node) ?? 0) + 1);
    out.push(pick.node);
  }
  return out;
}

/** A deterministic "random" sequence. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length];
}

describe('planAcquire', () => {
  test('ROUND_ROBIN rotates in the store with the model as the counter name', () => {
    const plan = planAcquire(fleet, { strategy: 'ROUND_ROBIN', rotateKey: 'llama3', previousNode: null, random: Math.random });
    expect(plan).toEqual({ candidates: fleet.map(({ node, maxconn }) => ({ node, maxconn })), order: 'rotate', rotateKey: 'llama3' });
  });

  test('ROUND_ROBIN spreads evenly: n requests over n nodes hit each node once (with the store plan)', () => {
    const plan = planAcquire(fleet, { strategy: 'ROUND_ROBIN', rotateKey: 'm', previousNode: null, random: Math.random });
    const first = [1, 2, 3, 4, 5, 6].map(
      (counter) =>
        plan.candidates[
          acquirePlan({ candidates: plan.candidates, order: 'rotate', inflight: [0, 0, 0], rotateCounter: counter, stickyNode: null })[0]
        ].node,
    );
    expect(first).toEqual(['a:1', 'b:1', 'c:1', 'a:1', 'b:1', 'c:1']);
  });

  test('a ROUND_ROBIN retry continues after the failed node without consuming a turn', () => {
    const remaining = [cand('a:1'), cand('c:1')];
    const plan = planAcquire(remaining, { strategy: 'ROUND_ROBIN', rotateKey: 'm', previousNode: 'b:1', random: Math.random });
    expect(plan.order).toBe('in_order');
    expect(plan.rotateKey).toBeUndefined();
    expect(plan.candidates.map((c) => c.node)).toEqual(['c:1', 'a:1']);
  });

  test('RANDOM shuffles and keeps the order', () => {
    const plan = planAcquire(fleet, { strategy: 'RANDOM', rotateKey: 'm', previousNode: null, random: sequence(0) });
    expect(plan.order).toBe('in_order');
    expect(plan.candidates.map((c) => c.node).sort()).toEqual(['a:1', 'b:1', 'c:1']);
  });

  test('RANDOM reaches every node over many draws', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      seen.add(planAcquire(fleet, { strategy: 'RANDOM', rotateKey: 'm', previousNode: null, random: Math.random }).candidates[0].node);
    }
    expect(seen.size).toBe(3);
  });

  test('LEAST_LOADED leaves the live ordering to the store, ties broken at random', () => {
    const plan = planAcquire(fleet, { strategy: 'LEAST_LOADED', rotateKey: 'm', previousNode: null, random: sequence(0.99, 0.99) });
    expect(plan.order).toBe('least_loaded');
    expect(plan.candidates).toHaveLength(3);
  });

  test('LEAST_LOADED hands the store each node’s outside load, slots and tier (NODE_PRIORITY, +COLD_TIER when cold)', () => {
    const list = [
      cand('a:1', { hints: { extraLoad: 3, slots: 4 }, priority: 5, warm: true }),
      cand('b:1', { hints: { extraLoad: 0, slots: 0 }, maxconn: 0, warm: false }),
    ];
    const plan = planAcquire(list, ctx({ random: sequence(0) }));
    expect(plan.candidates.sort((x, y) => x.node.localeCompare(y.node))).toEqual([
      { node: 'a:1', maxconn: 4, extraLoad: 3, slots: 4, tier: 5 },
      { node: 'b:1', maxconn: 0, extraLoad: 0, slots: 0, tier: DEFAULT_NODE_PRIORITY + COLD_TIER },
    ]);
  });

  test('simultaneous requests planned on one snapshot spread over the fleet instead of piling onto one node', () => {
    const idle = [cand('a:1'), cand('b:1'), cand('c:1')];
    const picks = landings(idle, 6);
    expect(['a:1', 'b:1', 'c:1'].map((n) => picks.filter((p) => p === n).length)).toEqual([2, 2, 2]);
  });

  test('an engine loaded by an outside client gets the next requests only once the others are as busy', () => {
    const list = [cand('a:1', { hints: { extraLoad: 3, slots: 4 } }), cand('b:1'), cand('c:1')];
    const picks = landings(list, 9);
    expect(picks.slice(0, 6).sort()).toEqual(['b:1', 'b:1', 'b:1', 'c:1', 'c:1', 'c:1']);
    // Then all three run 3 of 4: a takes one more, like the others (its 4th would be the outside client's).
    expect(picks.filter((p) => p === 'a:1')).toEqual(['a:1']);
  });

  test('warm first: a cold node gets a request only once every warm node is busy; NODE_PRIORITY spills only when full', () => {
    const list = [
      cand('cold:1', { warm: false, priority: 0 }),
      cand('warm:1', { warm: true, hints: { extraLoad: 0, slots: 2 } }),
      cand('preferred:1', { warm: true, priority: 1, hints: { extraLoad: 0, slots: 1 } }),
    ];
    expect(landings(list, 5)).toEqual(['preferred:1', 'warm:1', 'warm:1', 'cold:1', 'cold:1']);
  });

  test('equal load: the node with the emptier KV cache goes first', () => {
    const list = [cand('full:1', { engine: reading({ kvCacheUsage: 0.9 }) }), cand('empty:1', { engine: reading({ kvCacheUsage: 0.1 }) })];
    for (let i = 0; i < 10; i++) expect(landings(list, 1, { random: Math.random })[0]).toBe('empty:1');
  });

  test('P2C puts the cheaper of two random picks first', () => {
    const busy = [cand('a:1', { inflight: 3 }), cand('b:1', { inflight: 0 }), cand('c:1', { inflight: 2 })];
    // Picks index 0 of the ranked list (b) and then index 0 of the rest -> shifted to c.
    const plan = planAcquire(busy, { strategy: 'P2C', rotateKey: 'm', previousNode: null, random: sequence(0, 0) });
    expect(plan.order).toBe('in_order');
    expect(plan.candidates.map((c) => c.node)).toEqual(['b:1', 'c:1', 'a:1']);
  });

  test('P2C keeps every candidate exactly once, full nodes last; latency and failures add to the cost', () => {
    const list = [cand('a:1', { inflight: 4 }), cand('b:1'), cand('c:1', { inflight: 4 }), cand('d:1', { inflight: 1 })];
    for (let i = 0; i < 50; i++) {
      const out = planAcquire(list, ctx({ strategy: 'P2C' })).candidates.map((c) => c.node);
      expect([...out].sort()).toEqual(['a:1', 'b:1', 'c:1', 'd:1']);
      expect(out.slice(2).sort()).toEqual(['a:1', 'c:1']);
    }
    expect(p2cExtraCost(cand('a:1', { latencyMs: 900 }))).toBeGreaterThan(p2cExtraCost(cand('a:1')));
    expect(p2cExtraCost(cand('a:1', { failures: 1 }))).toBeGreaterThan(p2cExtraCost(cand('a:1')));
  });

  test('CACHE_AFFINITY sends one key to one node, in order; without a key it is LEAST_LOADED', () => {
    const rings = new HashRingCache();
    const homes = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const plan = planAcquire(shuffle(fleet, Math.random), ctx({ strategy: 'CACHE_AFFINITY', affinity: { key: 'session:abc', rings } }));
      expect(plan.order).toBe('in_order');
      homes.add(plan.candidates[0].node);
    }
    expect(homes.size).toBe(1);
    const keys = Array.from({ length: 60 }, (_, i) => `session:${i}`);
    const spread = new Set(
      keys.map((key) => planAcquire(fleet, ctx({ strategy: 'CACHE_AFFINITY', affinity: { key, rings } })).candidates[0].node),
    );
    expect(spread.size).toBe(3);
    expect(planAcquire(fleet, ctx({ strategy: 'CACHE_AFFINITY', affinity: { key: null, rings } })).order).toBe('least_loaded');
  });
});

describe('helpers', () => {
  test('rotateAfter wraps around sorted ids', () => {
    expect(rotateAfter(fleet, 'a:1').map((c) => c.node)).toEqual(['b:1', 'c:1', 'a:1']);
    expect(rotateAfter(fleet, 'c:1').map((c) => c.node)).toEqual(['a:1', 'b:1', 'c:1']);
    expect(rotateAfter(fleet, 'zzz').map((c) => c.node)).toEqual(['a:1', 'b:1', 'c:1']);
  });

  test('shuffle is a permutation', () => {
    expect(shuffle([1, 2, 3, 4], Math.random).sort()).toEqual([1, 2, 3, 4]);
  });
});
