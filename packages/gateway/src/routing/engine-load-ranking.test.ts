import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_NODE_PRIORITY, type EngineLoadReading } from '@ai-lb/shared';
import { isFull, loadRatio, outsideLoad, toEngineAwareCandidate, type EngineAwareCandidate } from './engine-candidate.ts';
import { compareTier, powerOfTwoByEngineLoad, rankByEngineLoad } from './engine-load-ranking.ts';

const reading = (overrides: Partial<EngineLoadReading> = {}): EngineLoadReading => ({
  node: 'n',
  running: 0,
  waiting: 0,
  kvCacheUsage: null,
  loadedModels: null,
  at: 0,
  ...overrides,
});

const candidate = (node: string, overrides: Partial<EngineAwareCandidate> = {}): EngineAwareCandidate => ({
  node,
  maxconn: 4,
  slots: 4,
  inflight: 0,
  engine: null,
  warm: null,
  priority: DEFAULT_NODE_PRIORITY,
  ...overrides,
});

const arbReading = fc.record({
  node: fc.constant('x'),
  running: fc.option(fc.nat(20), { nil: null }),
  waiting: fc.option(fc.nat(20), { nil: null }),
  kvCacheUsage: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null }),
  loadedModels: fc.constant(null),
  at: fc.constant(0),
});
const arbCandidates = fc
  .array(
    fc.record({
      maxconn: fc.nat(8),
      inflight: fc.nat(10),
      engine: fc.option(arbReading, { nil: null }),
      warm: fc.constantFrom(true, false, null),
      priority: fc.constantFrom(0, 1, 5, DEFAULT_NODE_PRIORITY),
    }),
    { minLength: 1, maxLength: 8 },
  )
  .map((list) => list.map((c, i): EngineAwareCandidate => ({ ...c, node: `10.0.0.${i}:8000`, slots: c.maxconn > 0 ? c.maxconn : null })));

describe('load arithmetic', () => {
  it('outside load = engine running + waiting beyond ai-lb’s own in-flight, floored at 0', () => {
    expect(outsideLoad(candidate('a', { inflight: 2, engine: reading({ running: 4, waiting: 3 }) }))).toBe(5);
    expect(outsideLoad(candidate('a', { inflight: 6, engine: reading({ running: 4, waiting: 0 }) }))).toBe(0);
    expect(outsideLoad(candidate('a', { inflight: 1, engine: reading({ running: null, waiting: null }) }))).toBe(0);
    expect(loadRatio(candidate('a', { inflight: 1, maxconn: 4, engine: reading({ running: 3, waiting: 3 }) }))).toBe(1.5);
    expect(loadRatio(candidate('a', { inflight: 3, maxconn: 0, slots: null }))).toBe(3);
  });

  it('full: every known slot busy (outside requests count), or the engine queues; unknown capacity never full', () => {
    expect(isFull(candidate('a', { inflight: 1, engine: reading({ running: 4 }) }))).toBe(true);
    expect(isFull(candidate('a', { inflight: 3 }))).toBe(false);
    expect(isFull(candidate('a', { maxconn: 0, slots: null, inflight: 50 }))).toBe(false);
    expect(isFull(candidate('a', { maxconn: 0, slots: null, engine: reading({ waiting: 1 }) }))).toBe(true);
  });

  it('a reading older than the age limit is ignored; warm only when the engine lists the model', () => {
    const node = { node: 'A:1', maxconn: 0, detectedMaxconn: 2 } as never;
    const base = { node, model: 'm', inflight: 0, priorities: new Map([['a:1', 3]]), now: 10_000, maxReadingAgeMs: 3000 };
    expect(toEngineAwareCandidate({ ...base, reading: reading({ at: 6_999 }) }).engine).toBeNull();
    const fresh = toEngineAwareCandidate({ ...base, reading: reading({ at: 7_000, loadedModels: ['m'] }) });
    expect(fresh).toMatchObject({ warm: true, priority: 3, slots: 2 });
    expect(toEngineAwareCandidate({ ...base, reading: reading({ at: 9_000, loadedModels: ['other'] }) }).warm).toBe(false);
    expect(toEngineAwareCandidate({ ...base, reading: undefined })).toMatchObject({ warm: null, engine: null });
  });
});

describe('rankByEngineLoad', () => {
  it('returns every candidate once', () => {
    fc.assert(
      fc.property(arbCandidates, (cs) => {
        expect(
          rankByEngineLoad(cs)
            .map((c) => c.node)
            .sort(),
        ).toEqual(cs.map((c) => c.node).sort());
      }),
    );
  });

  it('never picks a node that must load the model while a warm node has a free slot', () => {
    fc.assert(
      fc.property(arbCandidates, (cs) => {
        const first = rankByEngineLoad(cs)[0];
        if (cs.some((c) => !isFull(c) && c.warm === true)) expect(first.warm !== false && !isFull(first)).toBe(true);
      }),
    );
  });

  it('spills to a lower-priority node only when every better one is full (or cold while it is warm)', () => {
    fc.assert(
      fc.property(arbCandidates, (cs) => {
        const first = rankByEngineLoad(cs)[0];
        const sameWarmth = cs.filter((c) => !isFull(c) && (c.warm === false) === (first.warm === false));
        if (!isFull(first)) expect(first.priority).toBe(Math.min(...sameWarmth.map((c) => c.priority)));
      }),
    );
  });

  it('more outside load never moves a node earlier', () => {
    fc.assert(
      fc.property(arbCandidates, fc.nat(7), fc.integer({ min: 1, max: 20 }), (cs, pick, extra) => {
        const i = pick % cs.length;
        const before = rankByEngineLoad(cs).findIndex((c) => c.node === cs[i].node);
        const busier = cs.map((c, j) =>
          j === i ? { ...c, engine: { ...(c.engine ?? reading()), waiting: (c.engine?.waiting ?? 0) + c.inflight + extra } } : c,
        );
        const after = rankByEngineLoad(busier).findIndex((c) => c.node === cs[i].node);
        expect(after).toBeGreaterThanOrEqual(before);
      }),
    );
  });

  it('without engine readings it is the store’s least_loaded order (fill ratio, ties as given)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 8 }), fc.nat(7)), { minLength: 1, maxLength: 8 }), (shapes) => {
        const cs = shapes.map(([maxconn, inflight], i) =>
          candidate(`n${i}`, { maxconn, slots: maxconn, inflight: Math.min(inflight, maxconn - 1) }),
        );
        const expected = [...cs].sort((a, b) => a.inflight / a.maxconn - b.inflight / b.maxconn);
        expect(rankByEngineLoad(cs).map((c) => c.node)).toEqual(expected.map((c) => c.node));
      }),
    );
  });

  it('examples: outside load, warm first, priority, KV tie-breaker', () => {
    const busyOutside = candidate('busy', { engine: reading({ running: 4, waiting: 6 }) });
    const idle = candidate('idle', { inflight: 1, engine: reading({ running: 1 }) });
    expect(rankByEngineLoad([busyOutside, idle]).map((c) => c.node)).toEqual(['idle', 'busy']);

    const cold = candidate('cold', { warm: false });
    const warmBusy = candidate('warm', { warm: true, inflight: 3 });
    expect(rankByEngineLoad([cold, warmBusy])[0].node).toBe('warm');
    expect(rankByEngineLoad([cold, { ...warmBusy, inflight: 4 }])[0].node).toBe('cold');

    const preferred = candidate('gpu', { priority: 0, inflight: 3 });
    const spare = candidate('laptop', { priority: 10 });
    expect(rankByEngineLoad([spare, preferred])[0].node).toBe('gpu');
    expect(rankByEngineLoad([spare, { ...preferred, inflight: 4 }])[0].node).toBe('laptop');

    const fuller = candidate('fuller', { engine: reading({ kvCacheUsage: 0.9 }) });
    const emptier = candidate('emptier', { engine: reading({ kvCacheUsage: 0.1 }) });
    expect(rankByEngineLoad([fuller, emptier])[0].node).toBe('emptier');
  });
});

describe('powerOfTwoByEngineLoad', () => {
  it('every candidate once; the two picks come from the best tier, the cheaper first', () => {
    fc.assert(
      fc.property(arbCandidates, fc.infiniteStream(fc.double({ min: 0, max: 0.999, noNaN: true })), (cs, stream) => {
        const numbers = stream[Symbol.iterator]();
        const order = powerOfTwoByEngineLoad(cs, () => numbers.next().value as number);
        expect(order.map((c) => c.node).sort()).toEqual(cs.map((c) => c.node).sort());
        const best = rankByEngineLoad(cs)[0];
        expect(compareTier(order[0], best)).toBe(0);
        if (order.length > 1 && compareTier(order[1], best) === 0) expect(loadRatio(order[0])).toBeLessThanOrEqual(loadRatio(order[1]));
      }),
    );
  });
});
