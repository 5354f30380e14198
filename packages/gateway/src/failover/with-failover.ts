import { GatewayError, type NodeId } from '@ai-lb/shared';
import type { AbortSignalLike } from '../http/exchange.ts';
import type { Lease, Placement } from '../capacity/slot-leases.ts';
import type { FailureClass } from './classify-failure.ts';

export type AttemptResult =
  /** A response went to the client (success, or an upstream caller-fault passed through). */
  | { kind: 'answered' }
  /** The client left; nothing more to do. */
  | { kind: 'aborted' }
  /** Nothing reached the client; the slot is already released. */
  | { kind: 'failed'; failure: FailureClass; message: string; retryAfterMs: number | null };

export interface AttemptChoice {
  /** Nodes this attempt may use, in candidate order. */
  allowed: readonly NodeId[];
  /** Where the previous attempt went (null on the first). */
  previousNode: NodeId | null;
  /** 0 for the first attempt. */
  index: number;
}

export interface FailoverOptions {
  model: string;
  /** Eligible nodes for the request, sorted by id. */
  candidates: readonly NodeId[];
  /** MAX_RETRIES: attempts after the first, on any node. */
  maxRetries: number;
  /** Retry-After waits must fit in what is left of this (REQUEST_TIMEOUT_SECS from the start). */
  budgetMs: number;
  /** RETRY_AFTER_SECS, sent with 429 and 503 when no node could take the request. */
  retryAfterSecs: number;
  clock: () => number;
  random: () => number;
  signal: AbortSignalLike;
  /** Leases a slot for the attempt: at once when this process can place it, else one acquireSlot or a wait in the queue. */
  place: (choice: AttemptChoice) => Placement | Promise<Placement>;
  /** Sends the attempt and answers the client, or reports why it could not. */
  attempt: (lease: Lease, attemptNumber: number) => Promise<AttemptResult>;
  onRetry?: (sameNode: boolean) => void;
  /** A node asked (Retry-After) not to be sent anything until `untilMs`: later requests honour it too. */
  onRetryAfter?: (node: NodeId, untilMs: number) => void;
}

export interface FailoverOutcome {
  attempts: number;
  aborted: boolean;
}

/**
 * Tries the request on up to 1 + MAX_RETRIES attempts. Never the
 * same node twice in a row unless it is the only one (then with a jittered backoff, so
 * never a tight loop); never again a node that timed out in this request; a node's
 * Retry-After is honoured, and a node asking for longer than the remaining budget is
 * skipped for the rest of the request. A 429 without Retry-After still earns the node a
 * jittered backoff before it is asked again (two nodes both answering 429 must not be
 * alternated in a tight loop). When nothing answered: 429 with the soonest Retry-After the
 * nodes gave if every one answered 429, 504 if every attempt timed out, else 502 naming the
 * model, the attempts and the nodes tried.
 */
export async function withFailover(options: FailoverOptions): Promise<FailoverOutcome> {
  const { clock } = options;
  const deadline = clock() + options.budgetMs;
  const tried: NodeId[] = [];
  // Made by the first failed attempt: most requests are answered by their first.
  let retry: RetryState | null = null;
  let previous: NodeId | null = null;
  let lastFailure: Extract<AttemptResult, { kind: 'failed' }> | null = null;
  let allTimedOut = true;
  let allBusy = true;
  let soonestRetryAfterMs: number | null = null;

  for (let index = 0; index <= options.maxRetries; index++) {
    // The first attempt may use every candidate: nothing is tried, excluded or waited for yet.
    const allowed = retry === null ? firstAllowed(options.candidates) : await nextAllowed(options, tried, previous, deadline, retry);
    if (allowed === null) break;
    // A node that named its own wait (notBefore) was waited for already in nextAllowed.
    if (retry !== null && allowed.length === 1 && allowed[0] === previous && !retry.notBefore.has(previous)) {
      await sleep(backoffMs(countOf(tried, previous), options.random), options.signal);
    }
    const placing = options.place({ allowed, previousNode: previous, index });
    // A placement made at once is not awaited: an await is a microtask turn and garbage.
    const placement = placing instanceof Promise ? await placing : placing;
    if (placement.kind === 'rejected') {
      if (tried.length === 0) throw rejectionError(options.model, placement.reason, options.retryAfterSecs);
      break; // the other nodes are full or open now: report what the tried ones said
    }
    const node = placement.lease.node;
    if (index > 0) options.onRetry?.(node === previous);
    tried.push(node);
    const result = await options.attempt(placement.lease, tried.length);
    if (result.kind === 'answered') return { attempts: tried.length, aborted: false };
    if (result.kind === 'aborted') return { attempts: tried.length, aborted: true };
    lastFailure = result;
    previous = node;
    allTimedOut &&= result.failure.timedOut;
    allBusy &&= result.failure.reason === 'status_429';
    if (result.retryAfterMs !== null) soonestRetryAfterMs = Math.min(soonestRetryAfterMs ?? Infinity, result.retryAfterMs);
    if (!result.failure.retry) break;
    retry ??= { excluded: new Set(), notBefore: new Map() };
    const { excluded, notBefore } = retry;
    if (result.failure.timedOut) excluded.add(node);
    if (result.retryAfterMs !== null) options.onRetryAfter?.(node, clock() + result.retryAfterMs);
    const waitMs = result.retryAfterMs ?? (result.failure.reason === 'status_429' ? backoffMs(countOf(tried, node), options.random) : null);
    if (waitMs === null) notBefore.delete(node);
    else if (clock() + waitMs > deadline) excluded.add(node);
    else notBefore.set(node, clock() + waitMs);
  }
  if (tried.length > 0 && allBusy) {
    // Every node said "busy": the client should back off as the nodes asked, not retry at once.
    const retryAfterSecs = soonestRetryAfterMs === null ? options.retryAfterSecs : Math.max(1, Math.ceil(soonestRetryAfterMs / 1000));
    throw busyError(options.model, tried, retryAfterSecs);
  }
  throw exhaustedError(options.model, tried, lastFailure, allTimedOut);
}

interface RetryState {
  /** Nodes not to be tried again in this request. */
  excluded: Set<NodeId>;
  /** Nodes that asked (Retry-After) or earned (a 429's backoff) a wait. */
  notBefore: Map<NodeId, number>;
}

function firstAllowed(candidates: readonly NodeId[]): readonly NodeId[] | null {
  return candidates.length > 0 ? candidates : null;
}

/** The nodes the next attempt may use (waiting out a Retry-After if that is all there is), or null. */
async function nextAllowed(
  options: FailoverOptions,
  tried: readonly NodeId[],
  previous: NodeId | null,
  deadline: number,
  { excluded, notBefore }: RetryState,
): Promise<NodeId[] | null> {
  let allowed = options.candidates.filter((n) => !excluded.has(n));
  if (previous !== null && allowed.length > 1) allowed = allowed.filter((n) => n !== previous);
  const untried = allowed.filter((n) => !tried.includes(n));
  if (untried.length > 0) allowed = untried;
  if (allowed.length === 0) return null;
  const now = options.clock();
  const ready = allowed.filter((n) => (notBefore.get(n) ?? 0) <= now);
  if (ready.length > 0) return ready;
  const soonest = Math.min(...allowed.map((n) => notBefore.get(n)!));
  if (soonest > deadline) return null;
  await sleep(soonest - now, options.signal);
  return allowed;
}

function countOf(tried: readonly NodeId[], node: NodeId): number {
  let count = 0;
  for (const n of tried) if (n === node) count++;
  return count;
}

/** 50–150 ms, doubling per retry of the same node, at most ~1.5 s. */
function backoffMs(retriesOfNode: number, random: () => number): number {
  return Math.min(100 * 2 ** Math.max(0, retriesOfNode - 1), 1000) * (0.5 + random());
}

function sleep(ms: number, signal: AbortSignalLike): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function rejectionError(model: string, reason: 'capacity' | 'circuit', retryAfterSecs: number): GatewayError {
  const retryAfter = String(retryAfterSecs);
  if (reason === 'capacity') {
    return new GatewayError('capacity_exhausted', `every node serving model '${model}' is at capacity; retry later`, {
      headers: { 'retry-after': retryAfter, 'x-capacity-state': 'full', 'x-attempts': '0' },
    });
  }
  return new GatewayError('no_eligible_node', `every node serving model '${model}' has an open circuit breaker; retry later`, {
    headers: { 'retry-after': retryAfter, 'x-attempts': '0' },
  });
}

function busyError(model: string, tried: readonly NodeId[], retryAfterSecs: number): GatewayError {
  const nodes = [...new Set(tried)].join(', ');
  return new GatewayError('capacity_exhausted', `every node serving model '${model}' answered 429 (busy): ${nodes}; retry later`, {
    headers: { 'retry-after': String(retryAfterSecs), 'x-capacity-state': 'full', 'x-attempts': String(tried.length) },
  });
}

function exhaustedError(
  model: string,
  tried: NodeId[],
  last: Extract<AttemptResult, { kind: 'failed' }> | null,
  allTimedOut: boolean,
): GatewayError {
  const attempts = tried.length;
  const nodes = [...new Set(tried)].join(', ');
  const headers = { 'x-attempts': String(attempts) };
  const what = `model '${model}': ${attempts} attempt${attempts === 1 ? '' : 's'} on ${nodes}`;
  if (attempts > 0 && allTimedOut) {
    return new GatewayError('upstream_timeout', `${what} all timed out; last: ${last?.message ?? 'timeout'}`, { headers });
  }
  return new GatewayError('upstream_failed', `${what} failed; last error: ${last?.message ?? 'unknown'}`, { headers });
}

/** A Retry-After longer than this is capped: one odd header must not bench a node for hours. */
export const MAX_COOLDOWN_MS = 60_000;

/**
 * Retry-After across requests: a node that answered 429 with Retry-After is left out of
 * new requests' candidates until that time (an upstream Retry-After is honoured,
 * not just within the request that got it. Per gateway process, in memory: a hint, not a
 * contract — the breaker in the state store is what replicas share. Reads are one Map
 * lookup on the hot path, and only while some node is cooling down.
 */
export class NodeCooldowns {
  private readonly until = new Map<NodeId, number>();

  constructor(private readonly clock: () => number) {}

  note(node: NodeId, untilMs: number): void {
    const capped = Math.min(untilMs, this.clock() + MAX_COOLDOWN_MS);
    if (capped > (this.until.get(node) ?? 0)) this.until.set(node, capped);
  }

  /** The candidates not cooling down, or all of them when every one is (their 429s then speak for themselves). */
  filter<T extends { node: NodeId }>(candidates: readonly T[]): readonly T[] {
    if (this.until.size === 0) return candidates;
    const now = this.clock();
    for (const [node, until] of this.until) if (until <= now) this.until.delete(node);
    const ready = candidates.filter((c) => !this.until.has(c.node));
    return ready.length > 0 ? ready : candidates;
  }
}
