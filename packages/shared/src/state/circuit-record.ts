import type { CircuitInfo } from '../types.ts';
import type { AttemptOutcome } from './state-store.ts';

/**
 * What a store keeps per node for the circuit breaker (the Redis hash circuit:{node} holds
 * the same three fields). The rules below are pure; the Redis store's Lua scripts
 * transcribe them, the contract suite holds both to the same cases.
 */
export interface CircuitRecord {
  /** Consecutive failures. */
  failures: number;
  /** > now: open. In (0, now]: half-open (one probe may go). 0: closed. */
  openUntilMs: number;
  /** > now: a half-open probe is in flight, nobody else may probe. */
  probeUntilMs: number;
}

/**
 * 'pass': closed; 'probe': half-open and nobody probing, this request becomes the probe;
 * 'blocked': open, or half-open with a probe in flight.
 */
export type CircuitGate = 'pass' | 'probe' | 'blocked';

export function circuitGate(circuit: CircuitRecord | undefined, nowMs: number): CircuitGate {
  if (circuit === undefined || circuit.openUntilMs === 0) return 'pass';
  if (circuit.openUntilMs > nowMs) return 'blocked';
  return circuit.probeUntilMs > nowMs ? 'blocked' : 'probe';
}

/**
 * The circuit after an attempt ended. `null` means "closed with no failures", which the
 * stores represent by deleting the record: a healthy fleet keeps no circuit state at all.
 */
export function circuitAfterRelease(
  circuit: CircuitRecord | undefined,
  outcome: AttemptOutcome,
  probe: boolean,
  breaker: { threshold: number; ttlMs: number },
  nowMs: number,
): CircuitRecord | null {
  if (outcome === 'success') return null;
  if (outcome === 'neutral') {
    // A client abort or a caller's 4xx says nothing about the node: only free the probe turn.
    if (!probe || circuit === undefined) return circuit ?? null;
    return { ...circuit, probeUntilMs: 0 };
  }
  const failures = (circuit?.failures ?? 0) + 1;
  const reopen = failures >= breaker.threshold || probe;
  return {
    failures,
    openUntilMs: reopen ? nowMs + breaker.ttlMs : (circuit?.openUntilMs ?? 0),
    probeUntilMs: probe ? 0 : (circuit?.probeUntilMs ?? 0),
  };
}

/** The public view: half-open once an open circuit's time has passed. */
export function circuitInfo(circuit: CircuitRecord | undefined, nowMs: number): CircuitInfo {
  if (circuit === undefined) return { state: 'closed', failures: 0, openUntilMs: 0 };
  const state = circuit.openUntilMs === 0 ? 'closed' : circuit.openUntilMs > nowMs ? 'open' : 'half_open';
  return { state, failures: circuit.failures, openUntilMs: circuit.openUntilMs };
}

/** A release that cannot be applied (threshold 0, NaN ttl, unknown outcome) is a caller bug: say which. */
export function validateRelease(release: { outcome: AttemptOutcome; breaker: { threshold: number; ttlMs: number } }): void {
  const { outcome, breaker } = release;
  if (outcome !== 'success' && outcome !== 'failure' && outcome !== 'neutral') {
    throw new TypeError(`releaseSlot: outcome must be success, failure or neutral, got ${String(outcome)}`);
  }
  if (!Number.isSafeInteger(breaker?.threshold) || breaker.threshold < 1) {
    throw new TypeError(`releaseSlot: breaker.threshold must be an integer ≥ 1, got ${String(breaker?.threshold)}`);
  }
  if (!Number.isSafeInteger(breaker.ttlMs) || breaker.ttlMs < 1) {
    throw new TypeError(`releaseSlot: breaker.ttlMs must be an integer ≥ 1, got ${String(breaker.ttlMs)}`);
  }
}
