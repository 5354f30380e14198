import { describe, expect, test } from 'vitest';
import { GatewayError } from '@ai-lb/shared';
import type { Placement } from '../capacity/slot-leases.ts';
import { classifyError, classifyStatus } from './classify-failure.ts';
import { withFailover, type AttemptResult, type AttemptChoice, type FailoverOptions } from './with-failover.ts';

/**
 * The attempt loop on its own: `place` and `attempt` are plain functions scripted per
 * test (this is the loop's logic, not a stand-in for the network, which the gateway.*
 * tests exercise with real upstreams).
 */
const failed = (status: number, retryAfterMs: number | null = null): AttemptResult => ({
  kind: 'failed',
  failure: classifyStatus(status),
  message: `HTTP ${status}`,
  retryAfterMs,
});
const timedOut: AttemptResult = {
  kind: 'failed',
  failure: classifyError({ code: 'AI_LB_HEADERS_TIMEOUT' }),
  message: 'timeout',
  retryAfterMs: null,
};

function run(candidates: string[], script: (node: string, n: number) => AttemptResult, over: Partial<FailoverOptions> = {}) {
  const choices: AttemptChoice[] = [];
  const visited: string[] = [];
  const promise = withFailover({
    model: 'm',
    candidates,
    maxRetries: 2,
    budgetMs: 2000,
    retryAfterSecs: 2,
    clock: Date.now,
    random: () => 0.5,
    signal: new AbortController().signal,
    place: async (choice): Promise<Placement> => {
      choices.push(choice);
      return { kind: 'placed', lease: { node: choice.allowed[0], leaseId: `l${choices.length}`, probe: false } };
    },
    attempt: async (lease, n) => {
      visited.push(lease.node);
      return script(lease.node, n);
    },
    ...over,
  });
  return { promise, choices, visited };
}

async function errorOf(promise: Promise<unknown>): Promise<GatewayError> {
  const error = await promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(GatewayError);
  return error as GatewayError;
}

describe('withFailover', () => {
  test('success on the first attempt', async () => {
    const { promise, visited } = run(['a', 'b'], () => ({ kind: 'answered' }));
    expect(await promise).toEqual({ attempts: 1, aborted: false });
    expect(visited).toEqual(['a']);
  });

  test('moves to untried nodes first and never repeats a node back to back', async () => {
    const { promise, visited } = run(['a', 'b', 'c'], (node) => (node === 'c' ? { kind: 'answered' } : failed(500)));
    expect(await promise).toEqual({ attempts: 3, aborted: false });
    expect(visited).toEqual(['a', 'b', 'c']);
  });

  test('MAX_RETRIES bounds the attempts; the 502 names model, attempts and nodes', async () => {
    const { promise, visited } = run(['a', 'b'], () => failed(503), { maxRetries: 3 });
    const error = await errorOf(promise);
    expect(visited).toEqual(['a', 'b', 'a', 'b']);
    expect(error.status).toBe(502);
    expect(error.headers['x-attempts']).toBe('4');
    expect(error.message).toBe("model 'm': 4 attempts on a, b failed; last error: HTTP 503");
  });

  test('a timed-out node is not retried; all timeouts make a 504', async () => {
    const { promise, visited } = run(['a', 'b'], () => timedOut);
    const error = await errorOf(promise);
    expect(visited).toEqual(['a', 'b']);
    expect(error.status).toBe(504);
  });

  test('a caller fault or unknown error is not retried', async () => {
    const { promise, visited } = run(['a', 'b'], () => ({
      kind: 'failed',
      failure: classifyError(new Error('bug')),
      message: 'bug',
      retryAfterMs: null,
    }));
    expect((await errorOf(promise)).status).toBe(502);
    expect(visited).toEqual(['a']);
  });

  test('the only node is retried after a backoff', async () => {
    const started = Date.now();
    const { promise, visited } = run(['a'], (_n, attempt) => (attempt < 3 ? failed(500) : { kind: 'answered' }));
    expect(await promise).toEqual({ attempts: 3, aborted: false });
    expect(visited).toEqual(['a', 'a', 'a']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
  });

  test('Retry-After within the budget is waited out; beyond it the node is skipped', async () => {
    const started = Date.now();
    const waited = run(['a'], (_n, attempt) => (attempt === 1 ? failed(429, 300) : { kind: 'answered' }));
    expect(await waited.promise).toEqual({ attempts: 2, aborted: false });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);

    const skipped = run(['a'], () => failed(429, 60_000));
    const busy = await errorOf(skipped.promise);
    expect(busy).toMatchObject({ status: 429 });
    expect(busy.headers).toMatchObject({ 'retry-after': '60', 'x-capacity-state': 'full', 'x-attempts': '1' });
    expect(skipped.visited).toEqual(['a']);
  });

  test('every node busy (429): 429 with the soonest Retry-After they gave, else RETRY_AFTER_SECS; a mix is a 502', async () => {
    const busy = run(['a', 'b', 'c'], (node) => failed(429, node === 'b' ? 4_200 : node === 'a' ? 9_000 : null));
    const error = await errorOf(busy.promise);
    expect(error.status).toBe(429);
    expect(error.headers['retry-after']).toBe('5');
    expect(error.message).toMatch(/answered 429/);
    const bare = run(['a', 'b', 'c'], () => failed(429));
    expect((await errorOf(bare.promise)).headers['retry-after']).toBe('2');
    const mixed = run(['a', 'b', 'c'], (node) => (node === 'b' ? failed(500) : failed(429)));
    expect((await errorOf(mixed.promise)).status).toBe(502);
  });

  test('no slot at all: 429 with Retry-After and x-capacity-state; open circuits: 503', async () => {
    const full = run(['a'], () => ({ kind: 'answered' }), { place: async () => ({ kind: 'rejected', reason: 'capacity', waited: false }) });
    const capacity = await errorOf(full.promise);
    expect(capacity.status).toBe(429);
    expect(capacity.headers).toMatchObject({ 'retry-after': '2', 'x-capacity-state': 'full' });
    const open = run(['a'], () => ({ kind: 'answered' }), { place: async () => ({ kind: 'rejected', reason: 'circuit', waited: false }) });
    expect((await errorOf(open.promise)).status).toBe(503);
  });

  test('a client abort ends the loop without an error', async () => {
    const { promise, visited } = run(['a', 'b'], () => ({ kind: 'aborted' }));
    expect(await promise).toEqual({ attempts: 1, aborted: true });
    expect(visited).toEqual(['a']);
  });

  test('retries tell place() the previous node', async () => {
    const { promise, choices } = run(['a', 'b'], (node) => (node === 'b' ? { kind: 'answered' } : failed(500)));
    await promise;
    expect(choices.map((s) => [s.index, s.previousNode, s.allowed])).toEqual([
      [0, null, ['a', 'b']],
      [1, 'a', ['b']],
    ]);
  });
});
