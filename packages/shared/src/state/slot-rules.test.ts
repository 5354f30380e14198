/** firstInPlan picks what acquirePlan orders first (the store's rule), without building the order. */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { acquirePlan, firstInPlan } from './slot-rules.ts';
import type { AcquireOrder, SlotCandidate } from './state-store.ts';

const candidate = (i: number) =>
  fc.record({
    node: fc.constant(`10.0.0.${i}:8000`),
    maxconn: fc.constantFrom(0, 0, 1, 4, 8),
    extraLoad: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
    slots: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
    tier: fc.option(fc.constantFrom(0, 1, 1001, 2000), { nil: undefined }),
  });

const candidates = fc
  .integer({ min: 1, max: 7 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => candidate(i))))
  .map((list) => list.map((c) => Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as unknown as SlotCandidate));

it('is acquirePlan(…)[0] for every order, load, tier and counter', () => {
  fc.assert(
    fc.property(
      candidates,
      fc.constantFrom<AcquireOrder>('least_loaded', 'rotate', 'in_order'),
      fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 7, maxLength: 7 }),
      fc.integer({ min: 1, max: 1000 }),
      (list, order, counts, rotateCounter) => {
        const inflight = list.map((_, i) => counts[i]!);
        const expected = acquirePlan({ candidates: list, order, inflight, rotateCounter, stickyNode: null })[0];
        const byNode = new Map(list.map((c, i) => [c.node, counts[i]!]));
        expect(firstInPlan(list, order, (node) => byNode.get(node)!, rotateCounter)).toBe(expected);
      },
    ),
    { numRuns: 3000 },
  );
});

it('ties keep the given order, and an empty list has no first', () => {
  const two: SlotCandidate[] = [
    { node: 'a:1', maxconn: 0 },
    { node: 'b:1', maxconn: 0 },
  ];
  expect(firstInPlan(two, 'least_loaded', () => 3, 1)).toBe(0);
  expect(firstInPlan(two, 'least_loaded', (node) => (node === 'a:1' ? 4 : 3), 1)).toBe(1);
  expect(firstInPlan([], 'least_loaded', () => 0, 1)).toBe(-1);
});
