import { describe, expect, test } from 'vitest';
import { acquirePlan } from '@ai-lb/shared/state/slot-rules.ts';
import { p2cCost, planAcquire, powerOfTwoChoices, rotateAfter, shuffle, type RoutingCandidate } from './routing-rules.ts';

const cand = (node: string, over: Partial<RoutingCandidate> = {}): RoutingCandidate => ({
  node,
  maxconn: 4,
  inflight: 0,
  latencyMs: 100,
  failures: 0,
  ...over,
});
const fleet = [cand('a:1'), cand('b:1'), cand('c:1')];

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

  test('P2C puts the cheaper of two random picks first', () => {
    const busy = [cand('a:1', { inflight: 3 }), cand('b:1', { inflight: 0 }), cand('c:1', { inflight: 2 })];
    // Picks index 0 (a) and then index 0 of the rest -> shifted to b.
    const plan = planAcquire(busy, { strategy: 'P2C', rotateKey: 'm', previousNode: null, random: sequence(0, 0) });
    expect(plan.order).toBe('in_order');
    expect(plan.candidates.map((c) => c.node)).toEqual(['b:1', 'a:1', 'c:1']);
  });
});

describe('p2cCost', () => {
  test('load, latency and failures all raise the cost; a full node is last', () => {
    const base = p2cCost(cand('a:1'));
    expect(p2cCost(cand('a:1', { inflight: 2 }))).toBeGreaterThan(base);
    expect(p2cCost(cand('a:1', { latencyMs: 900 }))).toBeGreaterThan(base);
    expect(p2cCost(cand('a:1', { failures: 1 }))).toBeGreaterThan(base);
    expect(p2cCost(cand('a:1', { inflight: 4 }))).toBe(Number.POSITIVE_INFINITY);
    expect(p2cCost(cand('a:1', { maxconn: 0, inflight: 50 }))).toBeLessThan(Number.POSITIVE_INFINITY);
  });

  test('powerOfTwoChoices keeps every candidate exactly once, full nodes last', () => {
    const list = [cand('a:1', { inflight: 4 }), cand('b:1'), cand('c:1', { inflight: 4 }), cand('d:1', { inflight: 1 })];
    for (let i = 0; i < 50; i++) {
      const out = powerOfTwoChoices(list, Math.random).map((c) => c.node);
      expect([...out].sort()).toEqual(['a:1', 'b:1', 'c:1', 'd:1']);
    }
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
