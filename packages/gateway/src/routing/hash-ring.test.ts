import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HashRing, HashRingCache, hash32 } from './hash-ring.ts';

const arbNodes = fc.uniqueArray(fc.stringMatching(/^10\.0\.[0-9]{1,2}\.[0-9]{1,2}:[0-9]{4}$/), { minLength: 1, maxLength: 8 });
const arbKeys = fc.array(fc.string({ maxLength: 30 }), { minLength: 1, maxLength: 40 });

describe('HashRing', () => {
  it('walk lists every node once, owner first', () => {
    fc.assert(
      fc.property(arbNodes, fc.string(), (nodes, key) => {
        expect(new HashRing(nodes).walk(hash32(key)).sort()).toEqual([...nodes].sort());
      }),
      { numRuns: 50 },
    );
  });

  it('is the same on every replica, whatever order the node list comes in', () => {
    fc.assert(
      fc.property(arbNodes, arbKeys, (nodes, keys) => {
        const a = new HashRing(nodes);
        const b = new HashRing([...nodes].reverse());
        for (const key of keys) expect(b.walk(hash32(key))).toEqual(a.walk(hash32(key)));
      }),
      { numRuns: 30 },
    );
  });

  it('a node that joins takes keys only for itself; every other key keeps its owner', () => {
    fc.assert(
      fc.property(arbNodes, fc.stringMatching(/^192\.168\.1\.[0-9]{1,2}:8000$/), arbKeys, (nodes, joining, keys) => {
        const before = new HashRing(nodes);
        const after = new HashRing([...nodes, joining]);
        for (const key of keys) {
          const owner = after.walk(hash32(key))[0];
          expect([before.walk(hash32(key))[0], joining]).toContain(owner);
        }
      }),
      { numRuns: 30 },
    );
  });

  it('a node that leaves only hands over its own keys, to the next node of their walk', () => {
    fc.assert(
      fc.property(
        arbNodes.filter((n) => n.length >= 2),
        fc.nat(),
        arbKeys,
        (nodes, pick, keys) => {
          const leaving = nodes[pick % nodes.length];
          const before = new HashRing(nodes);
          const after = new HashRing(nodes.filter((n) => n !== leaving));
          for (const key of keys) {
            const walk = before.walk(hash32(key));
            expect(after.walk(hash32(key))[0]).toBe(walk[0] === leaving ? walk[1] : walk[0]);
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it('spreads keys evenly: no node of 5 owns more than 1.2× its share of 20 000 keys', () => {
    const nodes = ['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.3:8000', '10.0.0.4:11434', '10.0.0.5:1234'];
    const ring = new HashRing(nodes);
    const counts = new Map<string, number>();
    for (let k = 0; k < 20_000; k++) {
      const owner = ring.walk(hash32(`conversation-${k}`))[0];
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    expect(Math.max(...counts.values())).toBeLessThan((20_000 / 5) * 1.2);
  });

  it('an empty ring walks nowhere', () => {
    expect(new HashRing([]).walk(123)).toEqual([]);
  });
});

describe('HashRingCache', () => {
  it('one ring per node set, whatever the order; bounded', () => {
    const cache = new HashRingCache(2);
    const ring = cache.ringFor(['a:1', 'b:1']);
    expect(cache.ringFor(['b:1', 'a:1'])).toBe(ring);
    cache.ringFor(['c:1']);
    cache.ringFor(['d:1']);
    expect(cache.ringFor(['a:1', 'b:1'])).not.toBe(ring);
  });
});
