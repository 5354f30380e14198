import { uniquePrefix } from '@ai-lb/testkit';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, expect, inject, it } from 'vitest';
import { queueLength, sleep } from './contract-harness.ts';
import { MemoryStateStore } from './memory-state-store.ts';
import { RedisStateStore } from './redis-state-store.ts';
import type { AcquireOrder, AcquireSlotRequest, AttemptOutcome, QueueTicket, SlotCandidate, StateStore } from './state-store.ts';

/**
 * The Lua scripts transcribe slot-rules.ts by hand. This property
 * test runs the same random sequence of operations on both stores and demands identical
 * answers: acquires (orders, caps, rotate keys, sticky sessions, queue tickets that join
 * or only ask), releases (failures opening circuits), batches of outcomes, in-flight
 * reports, leaveQueue, renewQueueTickets, and time passing, which expires the short-lived
 * queue tickets.
 *
 * Time: Redis decides expiry by its own clock, so the memory store's clock moves only at a
 * `wait`, by WAIT_MS, while the test really sleeps as long. Between waits the test keeps
 * Redis' real time well inside SHORT_MS (a slow machine gets an extra wait, on both stores
 * alike), so a short ticket refreshed since the last wait is live on both and one refreshed
 * before it has expired on both. Leases, circuits and long tickets never expire here.
 */
const redisUrl = inject('redisUrl');
const NODES = ['a:1', 'b:1', 'c:1', 'd:1'];
const QUEUES = ['q1', 'q2'];
const LONG_MS = 60_000;
const SHORT_MS = 200;
const WAIT_MS = 220;
/** Real time after a wait beyond which the next op might meet a short ticket expiring under it. */
const SEGMENT_BUDGET_MS = 100;
const prefixes: string[] = [];

const ttl = fc.constantFrom(SHORT_MS, LONG_MS);
const anyCandidates = fc.uniqueArray(
  fc.record(
    {
      node: fc.constantFrom(...NODES),
      maxconn: fc.integer({ min: 0, max: 3 }),
      extraLoad: fc.integer({ min: 0, max: 4 }),
      slots: fc.integer({ min: 0, max: 3 }),
      tier: fc.integer({ min: 0, max: 2 }),
    },
    { requiredKeys: ['node', 'maxconn'] },
  ),
  {
    selector: (c) => c.node,
    minLength: 0,
    maxLength: 4,
  },
);
/**
 * As the gateway asks: a queue is per model, and a model's requests name the same few
 * nodes with small caps, so lines form and move. Random candidate lists mix in too.
 */
const MODEL_CANDIDATES: Record<string, SlotCandidate[]> = {
  q1: [
    { node: 'a:1', maxconn: 1 },
    { node: 'b:1', maxconn: 1 },
  ],
  q2: [{ node: 'c:1', maxconn: 1 }],
};

/** A request's first acquire; with `queue`, a new ticket. */
const acquireOp = fc
  .record({
    kind: fc.constant('acquire' as const),
    candidates: anyCandidates,
    order: fc.constantFrom<AcquireOrder>('in_order', 'least_loaded', 'rotate'),
    rotateKey: fc.constantFrom('m1', 'm2'),
    sticky: fc.option(fc.constantFrom('s1', 's2'), { nil: undefined }),
    queue: fc.option(fc.record({ key: fc.constantFrom(...QUEUES), ttlMs: ttl, join: fc.boolean() }), { nil: undefined, freq: 4 }),
    modelCandidates: fc.constantFrom(true, true, true, false),
  })
  .map(({ modelCandidates, ...op }) =>
    modelCandidates && op.queue !== undefined ? { ...op, candidates: MODEL_CANDIDATES[op.queue.key] } : op,
  );
/** A waiting request asks again with its ticket (one that joined a queue, maybe expired or left since). */
const retryOp = fc.record({ kind: fc.constant('retry' as const), pick: fc.nat(), join: fc.boolean(), ttlMs: ttl });
const releaseOp = fc.record({
  kind: fc.constant('release' as const),
  pick: fc.nat(),
  outcome: fc.constantFrom<AttemptOutcome>('success', 'failure', 'neutral'),
  threshold: fc.constantFrom(1, 2),
});
const leaveOp = fc.record({ kind: fc.constant('leave' as const), picks: fc.array(fc.nat(), { maxLength: 2 }) });
const renewOp = fc.record({ kind: fc.constant('renew' as const), picks: fc.array(fc.nat(), { maxLength: 3 }), ttlMs: ttl });
const waitOp = fc.record({ kind: fc.constant('wait' as const) });
/** A replica's batch of outcomes of attempts placed without a lease. */
const outcomesOp = fc.record({
  kind: fc.constant('outcomes' as const),
  batches: fc.uniqueArray(
    fc
      .record({
        node: fc.constantFrom(...NODES),
        leadingFailures: fc.integer({ min: 0, max: 3 }),
        succeeded: fc.boolean(),
        trailingFailures: fc.integer({ min: 0, max: 3 }),
      })
      .map((b) => (b.succeeded ? b : { ...b, trailingFailures: 0 })),
    { selector: (b) => b.node, maxLength: 3 },
  ),
  threshold: fc.constantFrom(1, 2, 3),
});
/** A replica's in-flight report. */
const shareOp = fc.record({
  kind: fc.constant('share' as const),
  replicaId: fc.constantFrom('r1', 'r2'),
  counts: fc.dictionary(fc.constantFrom(...NODES), fc.integer({ min: 0, max: 4 }), { maxKeys: 3 }),
});
const operations = fc.array(
  fc.oneof(
    { arbitrary: acquireOp, weight: 10 },
    { arbitrary: retryOp, weight: 5 },
    { arbitrary: releaseOp, weight: 4 },
    { arbitrary: leaveOp, weight: 1 },
    { arbitrary: renewOp, weight: 2 },
    { arbitrary: waitOp, weight: 1 },
    { arbitrary: outcomesOp, weight: 2 },
    { arbitrary: shareOp, weight: 1 },
  ),
  { minLength: 5, maxLength: 40, size: 'max' },
);

afterAll(async () => {
  const admin = new Redis(redisUrl);
  for (const p of prefixes) {
    const keys = await admin.keys(`${p}*`);
    if (keys.length > 0) await admin.del(...keys);
  }
  await admin.quit();
});

it('memory and Redis stores give identical answers to the same operations, queues and expiry included', async () => {
  await fc.assert(
    fc.asyncProperty(operations, async (ops) => {
      const keyPrefix = uniquePrefix('agree');
      prefixes.push(keyPrefix);
      let memoryNow = Date.now();
      const stores: StateStore[] = [new MemoryStateStore({ clock: () => memoryNow }), new RedisStateStore({ url: redisUrl, keyPrefix })];
      let segmentStart = performance.now();
      const wait = async () => {
        await sleep(WAIT_MS);
        memoryNow += WAIT_MS;
        segmentStart = performance.now();
      };
      const both = <T>(call: (store: StateStore) => Promise<T>) => Promise.all(stores.map(call));
      try {
        const held: { node: string; leaseId: string; probe: boolean }[] = [];
        /** Tickets that joined a queue, and the request each belongs to. */
        const joined: { request: AcquireSlotRequest; queue: QueueTicket }[] = [];
        const pickFrom = <T>(list: T[], pick: number): T | undefined => list[pick % Math.max(1, list.length)];
        let seq = 0;
        const acquire = async (request: AcquireSlotRequest) => {
          const [mem, red] = await both((s) => s.acquireSlot(request));
          expect(red).toEqual(mem);
          if (mem.node !== null) held.push({ node: mem.node, leaseId: request.leaseId, probe: mem.probe });
          return mem;
        };
        for (const op of ops) {
          if (op.kind === 'wait' || performance.now() - segmentStart > SEGMENT_BUDGET_MS) await wait();
          if (op.kind === 'acquire') {
            const queue = op.queue === undefined ? undefined : { ...op.queue, ticket: `t${seq}` };
            const request: AcquireSlotRequest = {
              candidates: op.candidates,
              order: op.order,
              rotateKey: op.rotateKey,
              leaseId: `l${seq++}`,
              leaseMs: LONG_MS,
              probeLeaseMs: LONG_MS,
              sticky: op.sticky === undefined ? undefined : { key: op.sticky, ttlMs: LONG_MS },
              queue,
            };
            const result = await acquire(request);
            if (queue?.join && result.reason === 'capacity') joined.push({ request, queue });
          } else if (op.kind === 'retry') {
            const waiter = pickFrom(joined, op.pick);
            if (waiter === undefined) continue;
            const queue = { ...waiter.queue, join: op.join, ttlMs: op.ttlMs };
            const result = await acquire({ ...waiter.request, leaseId: `l${seq++}`, queue });
            if (result.node !== null) joined.splice(joined.indexOf(waiter), 1);
          } else if (op.kind === 'release' && held.length > 0) {
            const [lease] = held.splice(op.pick % held.length, 1);
            const release = { ...lease, outcome: op.outcome, breaker: { threshold: op.threshold, ttlMs: LONG_MS } };
            await both((s) => s.releaseSlot(release));
          } else if (op.kind === 'leave') {
            const leaving = op.picks.flatMap((pick) => pickFrom(joined, pick) ?? []);
            const tickets = [...leaving.map((w) => w.queue), { key: QUEUES[0], ticket: 'never-queued' }];
            await both((s) => s.leaveQueue(tickets));
            for (const waiter of leaving) if (joined.includes(waiter)) joined.splice(joined.indexOf(waiter), 1);
          } else if (op.kind === 'outcomes') {
            await both((s) => s.recordOutcomes(op.batches, { threshold: op.threshold, ttlMs: LONG_MS }));
          } else if (op.kind === 'share') {
            const report = { replicaId: op.replicaId, counts: op.counts, ttlMs: LONG_MS, nodes: NODES };
            const [mem, red] = await both((s) => s.shareInflight(report));
            expect(red).toEqual(mem);
          } else if (op.kind === 'renew') {
            const tickets = op.picks.flatMap((pick) => pickFrom(joined, pick)?.queue ?? []);
            await both((s) => s.renewQueueTickets(tickets, op.ttlMs));
          }
        }
        const [memInflight, redInflight] = await both((s) => s.getInflight(NODES));
        expect(redInflight).toEqual(memInflight);
        const [memCircuits, redCircuits] = await both((s) => s.getCircuits(NODES));
        const shape = (c: typeof memCircuits) => Object.values(c).map(({ state, failures }) => ({ state, failures }));
        expect(shape(redCircuits)).toEqual(shape(memCircuits));
        // Queue lengths now, and once more after the short tickets expired.
        for (const passed of [false, true]) {
          if (passed) await wait();
          for (const key of QUEUES) {
            if (performance.now() - segmentStart > SEGMENT_BUDGET_MS) await wait();
            const [memLength, redLength] = await both((s) => queueLength(s, key));
            expect(redLength).toBe(memLength);
          }
        }
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    }),
    { numRuns: 25 },
  );
});
