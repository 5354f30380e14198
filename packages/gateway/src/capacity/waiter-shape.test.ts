import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runWithNativesSyntax } from '../testing/natives-syntax.ts';

const QUEUE = fileURLToPath(new URL('./wait-for-slot.ts', import.meta.url));
const STORE = fileURLToPath(new URL('../../../shared/src/index.ts', import.meta.url));

/**
 * Waiters of different requests must share one hidden class. Built as `{ ...request, busy, … }`
 * they did not (on Node 20 each got a new one, kept by the old generation with what the waiter
 * reaches); V8's `%HaveSameMap` tells, in a process started with --allow-natives-syntax.
 */
describe('a waiter in the slot wait queue', () => {
  it('has the same hidden class as every other waiter', async () => {
    const source = `
      import { SlotWaitQueue } from ${JSON.stringify(QUEUE)};
      import { MemoryStateStore } from ${JSON.stringify(STORE)};
      const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)');
      const queue = new SlotWaitQueue(new MemoryStateStore(), 60_000);
      const signal = { aborted: false, reason: undefined, addEventListener() {}, removeEventListener() {} };
      const noRoom = async () => ({ node: null, probe: false, reason: 'capacity', inflight: {} });
      for (let i = 0; i < 200; i++) {
        void queue.waitForSlot({ group: 'model', ticket: 't' + i, tryAcquire: noRoom, deadlineMs: Date.now() + 60_000, signal });
      }
      const waiters = queue.waiters.toArray();
      const shared = waiters.every((waiter) => sameMap(waiter, waiters[0]));
      process.stdout.write(JSON.stringify({ count: waiters.length, shared }));
      queue.close();
    `;
    const stdout = await runWithNativesSyntax(source);
    expect(JSON.parse(stdout)).toEqual({ count: 200, shared: true });
  });
});
