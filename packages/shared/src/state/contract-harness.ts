import { randomUUID } from 'node:crypto';
import type { NodeId, NodeState } from '../types.ts';
import type { AcquireSlotRequest, AcquireSlotResult, AttemptOutcome, SlotCandidate, StateStore } from './state-store.ts';

/**
 * What the contract suite needs from each implementation, built fresh per test on fresh
 * shared state (memory: a new store with its own clock; Redis: a new key prefix).
 */
export interface StoreUnderTest {
  store: StateStore;
  /**
   * Another instance on the same shared state: for Redis a second store with its own
   * connections on the same prefix (another replica); for memory the same store.
   */
  peer(): Promise<StateStore>;
  /** Lets `ms` of store time pass: memory moves its injected clock, Redis really waits. */
  advance(ms: number): Promise<void>;
  /** Resolves once listeners registered on `store` will hear what happens next. */
  listening(store: StateStore): Promise<void>;
  /** Closes the store and every peer. */
  close(): Promise<void>;
}

export type MakeStoreUnderTest = () => Promise<StoreUnderTest>;

export function nodeState(node: NodeId, overrides: Partial<NodeState> = {}): NodeState {
  const [host, port] = [node.slice(0, node.lastIndexOf(':')), Number(node.slice(node.lastIndexOf(':') + 1))];
  return {
    node,
    host,
    port,
    kind: 'openai',
    healthy: true,
    models: ['m1'],
    loadedModels: [],
    maxconn: 0,
    capacitySource: 'default',
    detectedMaxconn: null,
    latencyMs: 12.5,
    lastSeenMs: 1_700_000_000_000,
    checkedAtMs: 1_700_000_000_000,
    error: null,
    serverLoad: null,
    ...overrides,
  };
}

/** Long enough that nothing a test does expires by accident, even on a loaded machine. */
export const LONG_MS = 60_000;

export function acquire(
  store: StateStore,
  candidates: SlotCandidate[],
  extra: Partial<AcquireSlotRequest> = {},
): Promise<AcquireSlotResult & { leaseId: string }> {
  const leaseId = extra.leaseId ?? randomUUID();
  return store
    .acquireSlot({ candidates, order: 'in_order', leaseMs: LONG_MS, probeLeaseMs: LONG_MS, ...extra, leaseId })
    .then((result) => ({ ...result, leaseId }));
}

export function release(
  store: StateStore,
  lease: { node: NodeId | null; leaseId: string; probe?: boolean },
  outcome: AttemptOutcome,
  breaker = { threshold: 3, ttlMs: LONG_MS },
): Promise<void> {
  if (lease.node === null) throw new Error('test bug: releasing a lease that was not acquired');
  return store.releaseSlot({ node: lease.node, leaseId: lease.leaseId, outcome, probe: lease.probe ?? false, breaker });
}

/**
 * How many live tickets wait in queue `key`, as a newcomer finds out: one that does not
 * join gets a slot on a node with room for k only when fewer than k tickets are ahead of
 * it. Each probe uses a node of its own, so the nodes under test and the queue are left
 * as they were (expired tickets aside, which any acquire prunes).
 */
export async function queueLength(store: StateStore, key: string, max = 16): Promise<number> {
  for (let room = 1; room <= max; room++) {
    const probe = await acquire(store, [{ node: `queue-probe-${randomUUID()}:1`, maxconn: room }], {
      queue: { key, ticket: `probe-${randomUUID()}`, ttlMs: LONG_MS, join: false },
    });
    if (probe.node !== null) return room - 1;
  }
  throw new Error(`queue ${key} holds more than ${max} tickets`);
}

/**
 * Resolves with the first value a subscription delivers; rejects after timeoutMs so a lost
 * notification fails the test instead of hanging it.
 */
export function nextEvent<T>(subscribe: (listener: (value: T) => void) => () => void, timeoutMs = 2000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no notification within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = subscribe((value) => {
      clearTimeout(timer);
      unsubscribe();
      resolve(value);
    });
  });
}

/** Collects every value a subscription delivers until stopped. */
export function collect<T>(subscribe: (listener: (value: T) => void) => () => void): { values: T[]; stop: () => void } {
  const values: T[] = [];
  const stop = subscribe((value) => values.push(value));
  return { values, stop };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
