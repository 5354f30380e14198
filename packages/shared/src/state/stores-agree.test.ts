import { uniquePrefix } from '@ai-lb/testkit';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, expect, inject, it } from 'vitest';
import type { AttemptOutcome, AcquireOrder } from './state-store.ts';
import { MemoryStateStore } from './memory-state-store.ts';
import { RedisStateStore } from './redis-state-store.ts';

/**
 * The Lua scripts transcribe acquire-plan.ts and circuit-record.ts by hand. This property
 * test runs the same random sequence of acquires and releases (orders, caps, rotate keys,
 * sticky sessions, failures opening circuits) on both stores and demands identical answers.
 * Leases and circuits are long-lived here so the two clocks never matter.
 */
const redisUrl = inject('redisUrl');
const NODES = ['a:1', 'b:1', 'c:1', 'd:1'];
const prefixes: string[] = [];

const acquireOp = fc.record({
  kind: fc.constant('acquire' as const),
  candidates: fc.uniqueArray(fc.record({ node: fc.constantFrom(...NODES), maxconn: fc.integer({ min: 0, max: 3 }) }), {
    selector: (c) => c.node,
    minLength: 0,
    maxLength: 4,
  }),
  order: fc.constantFrom<AcquireOrder>('in_order', 'least_loaded', 'rotate'),
  rotateKey: fc.constantFrom('m1', 'm2'),
  sticky: fc.option(fc.constantFrom('s1', 's2'), { nil: undefined }),
});
const releaseOp = fc.record({
  kind: fc.constant('release' as const),
  pick: fc.nat(),
  outcome: fc.constantFrom<AttemptOutcome>('success', 'failure', 'neutral'),
});
const operations = fc.array(fc.oneof({ arbitrary: acquireOp, weight: 3 }, { arbitrary: releaseOp, weight: 2 }), { maxLength: 40 });

afterAll(async () => {
  const admin = new Redis(redisUrl);
  for (const p of prefixes) {
    const keys = await admin.keys(`${p}*`);
    if (keys.length > 0) await admin.del(...keys);
  }
  await admin.quit();
});

it('memory and Redis stores give identical answers to the same operations', async () => {
  await fc.assert(
    fc.asyncProperty(operations, async (ops) => {
      const keyPrefix = uniquePrefix('agree');
      prefixes.push(keyPrefix);
      const stores = [new MemoryStateStore(), new RedisStateStore({ url: redisUrl, keyPrefix })];
      try {
        const held: { node: string; leaseId: string; probe: boolean }[] = [];
        let seq = 0;
        for (const op of ops) {
          if (op.kind === 'acquire') {
            const leaseId = `l${seq++}`;
            const request = {
              candidates: op.candidates,
              order: op.order,
              rotateKey: op.rotateKey,
              leaseId,
              leaseMs: 60_000,
              probeLeaseMs: 60_000,
              sticky: op.sticky === undefined ? undefined : { key: op.sticky, ttlMs: 60_000 },
            };
            const [mem, red] = await Promise.all(stores.map((s) => s.acquireSlot(request)));
            expect(red).toEqual(mem);
            if (mem.node !== null) held.push({ node: mem.node, leaseId, probe: mem.probe });
          } else if (held.length > 0) {
            const [lease] = held.splice(op.pick % held.length, 1);
            const release = { ...lease, outcome: op.outcome, breaker: { threshold: 2, ttlMs: 60_000 } };
            await Promise.all(stores.map((s) => s.releaseSlot(release)));
          }
        }
        const [memInflight, redInflight] = await Promise.all(stores.map((s) => s.getInflight(NODES)));
        expect(redInflight).toEqual(memInflight);
        const [memCircuits, redCircuits] = await Promise.all(stores.map((s) => s.getCircuits(NODES)));
        const shape = (c: typeof memCircuits) => Object.values(c).map(({ state, failures }) => ({ state, failures }));
        expect(shape(redCircuits)).toEqual(shape(memCircuits));
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    }),
    { numRuns: 40 },
  );
});
