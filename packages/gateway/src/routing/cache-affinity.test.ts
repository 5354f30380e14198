import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_NODE_PRIORITY } from '@ai-lb/shared';
import { isFull, totalLoad, type EngineAwareCandidate } from './engine-candidate.ts';
import {
  AFFINITY_LOAD_FACTOR,
  AFFINITY_MIN_FLOOR,
  AffinityHomes,
  affinityBound,
  affinityFloor,
  orderByCacheAffinity,
} from './cache-affinity.ts';
import { HashRing, hash32 } from './hash-ring.ts';

const NODES = ['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.3:8000', '10.0.0.4:8000'];

const candidate = (node: string, overrides: Partial<EngineAwareCandidate> = {}): EngineAwareCandidate => ({
  node,
  maxconn: 0,
  slots: 4,
  inflight: 0,
  engine: null,
  warm: null,
  priority: DEFAULT_NODE_PRIORITY,
  ...overrides,
});

const arbLoads = fc.array(fc.nat(30), { minLength: NODES.length, maxLength: NODES.length });
const ring = new HashRing(NODES);

describe('orderByCacheAffinity', () => {
  it('an idle fleet: every key goes to its home node on the ring', () => {
    fc.assert(
      fc.property(fc.string(), (key) => {
        const order = orderByCacheAffinity(
          NODES.map((n) => candidate(n)),
          key,
          ring,
        );
        expect(order[0].node).toBe(ring.walk(hash32(key))[0]);
        expect(order.map((c) => c.node).sort()).toEqual([...NODES].sort());
      }),
    );
  });

  it('the chosen node is under its bound whenever any node is', () => {
    fc.assert(
      fc.property(arbLoads, fc.string(), (loads, key) => {
        const cs = NODES.map((n, i) => candidate(n, { inflight: loads[i] }));
        const first = orderByCacheAffinity(cs, key, ring)[0];
        const under = cs.filter((c) => totalLoad(c) < affinityBound(c, cs));
        if (under.length > 0) expect(totalLoad(first)).toBeLessThan(affinityBound(first, cs));
      }),
    );
  });

  it('a key keeps its home node while that node is under its bound, busy slots or not', () => {
    fc.assert(
      fc.property(arbLoads, fc.string(), (loads, key) => {
        const home = ring.walk(hash32(key))[0];
        const cs = NODES.map((n, i) => candidate(n, { inflight: loads[i] }));
        const homeCandidate = cs.find((c) => c.node === home)!;
        const first = orderByCacheAffinity(cs, key, ring)[0];
        if (totalLoad(homeCandidate) < affinityBound(homeCandidate, cs)) expect(first.node).toBe(home);
        // The floor: a node with a free slot always keeps its keys.
        if (totalLoad(homeCandidate) < 4) expect(first.node).toBe(home);
      }),
    );
  });

  it('an overloaded home passes the key to the next node of its walk under the bound', () => {
    const key = 'conversation-7';
    const walk = ring.walk(hash32(key));
    const cs = NODES.map((n) => candidate(n, { inflight: n === walk[0] ? 20 : 1 }));
    expect(orderByCacheAffinity(cs, key, ring)[0].node).toBe(walk[1]);
  });

  it('the same answer on every replica, whatever order the candidates come in', () => {
    fc.assert(
      fc.property(arbLoads, fc.string(), (loads, key) => {
        const cs = NODES.map((n, i) => candidate(n, { inflight: loads[i] }));
        const a = orderByCacheAffinity(cs, key, ring).map((c) => c.node);
        const b = orderByCacheAffinity([...cs].reverse(), key, new HashRing([...NODES].reverse())).map((c) => c.node);
        expect(b).toEqual(a);
      }),
      { numRuns: 30 },
    );
  });

  it('a cold home loses to a warm node with room; a lower-priority home to a preferred node under its bound', () => {
    fc.assert(
      fc.property(fc.string(), fc.nat(3), (key, pick) => {
        const chosen = NODES[pick];
        const warm = NODES.map((n) => candidate(n, { warm: n === chosen }));
        expect(orderByCacheAffinity(warm, key, ring)[0].node).toBe(chosen);
        const preferred = NODES.map((n) => candidate(n, { priority: n === chosen ? 0 : 5 }));
        expect(orderByCacheAffinity(preferred, key, ring)[0].node).toBe(chosen);
        const preferredBusy = NODES.map((n) => candidate(n, { priority: n === chosen ? 0 : 5, inflight: n === chosen ? 9 : 0 }));
        expect(orderByCacheAffinity(preferredBusy, key, ring)[0].node).not.toBe(chosen);
      }),
    );
  });

  it('never a cold node first while a warm node has a free slot', () => {
    fc.assert(
      fc.property(
        arbLoads,
        fc.array(fc.constantFrom(true, false, null), { minLength: 4, maxLength: 4 }),
        fc.string(),
        (loads, warmth, key) => {
          const cs = NODES.map((n, i) => candidate(n, { inflight: loads[i], warm: warmth[i] }));
          const first = orderByCacheAffinity(cs, key, ring)[0];
          if (cs.some((c) => c.warm === true && !isFull(c))) expect(first.warm).not.toBe(false);
        },
      ),
    );
  });

  it('a capped warm node goes before every cold node whatever the cached count: the store skips it only at its cap, live', () => {
    fc.assert(
      fc.property(arbLoads, fc.nat(3), fc.string(), (loads, pick, key) => {
        const cs = NODES.map((n, i) => candidate(n, { maxconn: 2, slots: 2, inflight: loads[i], warm: i === pick }));
        const order = orderByCacheAffinity(cs, key, ring).map((c) => c.node);
        expect(order[0]).toBe(NODES[pick]);
      }),
    );
  });

  it('bound = max(c × (total + 1) / n, slots)', () => {
    const cs = NODES.map((n, i) => candidate(n, { inflight: [10, 10, 10, 9][i] }));
    expect(affinityBound(cs[0], cs)).toBeCloseTo(AFFINITY_LOAD_FACTOR * 10);
    const idle = NODES.map((n) => candidate(n, { slots: 6 }));
    expect(affinityBound(idle[0], idle)).toBe(6);
    expect(affinityBound(candidate('x', { slots: null }), [candidate('x', { slots: null })])).toBe(AFFINITY_LOAD_FACTOR);
  });

  it('unknown slot count: an engine that queues nothing keeps its keys; one that queues does not', () => {
    const engine = (waiting: number) => ({ node: 'x', running: 6, waiting, kvCacheUsage: null, loadedModels: null, at: 0 });
    const free = candidate('x', { slots: null, inflight: 6, engine: engine(0) });
    expect(affinityFloor(free)).toBe(7);
    const queueing = candidate('x', { slots: null, inflight: 6, engine: engine(2) });
    expect(affinityFloor(queueing)).toBe(AFFINITY_MIN_FLOOR);
    expect(affinityFloor(candidate('x', { slots: null }))).toBe(AFFINITY_MIN_FLOOR);
  });

  it('a key passed on to another node stays there (its prefix is cached there) while that node is under its bound', () => {
    fc.assert(
      fc.property(arbLoads, fc.string(), fc.nat(3), (loads, key, pick) => {
        const last = NODES[pick];
        const cs = NODES.map((n, i) => candidate(n, { inflight: loads[i] }));
        const lastCandidate = cs[pick];
        const order = orderByCacheAffinity(cs, key, ring, { lastNode: last }).map((c) => c.node);
        if (totalLoad(lastCandidate) < affinityBound(lastCandidate, cs)) expect(order[0]).toBe(last);
        else expect(order[0]).not.toBe(last);
        expect([...order].sort()).toEqual([...NODES].sort());
      }),
    );
  });

  it('a last node that is no candidate (gone, or failed this request) is ignored: the ring decides', () => {
    const key = 'conversation-9';
    const cs = NODES.map((n) => candidate(n));
    expect(orderByCacheAffinity(cs, key, ring, { lastNode: '10.9.9.9:1' })[0].node).toBe(ring.walk(hash32(key))[0]);
  });
});

describe('AffinityHomes', () => {
  it('remembers the last node per key, the most recent keys only', () => {
    const homes = new AffinityHomes(3);
    homes.note('a', 'n1');
    homes.note('b', 'n1');
    homes.note('c', 'n2');
    homes.note('a', 'n3');
    homes.note('d', 'n2');
    expect(homes.size).toBe(3);
    expect(homes.get('a')).toBe('n3');
    expect(homes.get('b')).toBeUndefined();
    expect([homes.get('c'), homes.get('d')]).toEqual(['n2', 'n2']);
  });
});
