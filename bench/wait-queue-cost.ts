/**
 * What one pass over the slot wait queue costs with a long line (docs/performance.md):
 * `npx tsx bench/wait-queue-cost.ts [waiters] [--groups]`. Every waiter
 * is told "capacity" (no room), so a pass visits the whole line; with one group (one model,
 * the default) only the oldest waiter asks the store, as in production. In-process, memory
 * store, no network: it times the queue's own bookkeeping.
 */
import { MemoryStateStore } from '@ai-lb/shared';
import { SlotWaitQueue } from '../packages/gateway/src/capacity/wait-for-slot.ts';

const waiters = Number(process.argv[2] ?? 2000);
const groupEach = process.argv.includes('--groups');
const PASSES = 20;

const queue = new SlotWaitQueue(new MemoryStateStore(), 60_000);
const neverAborted = { aborted: false, reason: undefined, addEventListener() {}, removeEventListener() {} };
const noRoom = async () => ({ node: null, probe: false, reason: 'capacity' as const, inflight: {} });
for (let i = 0; i < waiters; i++) {
  const group = groupEach ? `model-${i}` : 'model';
  void queue.waitForSlot({ group, ticket: `t${i}`, deadlineMs: Date.now() + 600_000, signal: neverAborted, tryAcquire: noRoom });
}
// pump() is private: called directly so that passes are timed alone, back to back.
const pump = () => (queue as unknown as { pump(): Promise<void> }).pump();
const startedAt = performance.now();
for (let i = 0; i < PASSES; i++) await pump();
const msPerPass = (performance.now() - startedAt) / PASSES;
process.stdout.write(`${waiters} waiters, ${groupEach ? 'one group each' : 'one group'}: ${msPerPass.toFixed(2)} ms per pass\n`);
queue.close();
