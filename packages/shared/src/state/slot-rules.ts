import type { CircuitInfo, NodeId } from '../types.ts';
import type {
  AcquireOrder,
  AcquireSlotRequest,
  AttemptOutcome,
  InflightReport,
  NodeOutcomes,
  QueueTicket,
  ReserveSlotsRequest,
  SlotCandidate,
} from './state-store.ts';

/**
 * The rules every store follows for slots and circuits, pure: both stores validate requests
 * here; the memory store runs the rules, and the Redis store's Lua scripts (redis-scripts.ts)
 * are line-by-line transcriptions of them. The contract suite runs the same cases against
 * both, so the two cannot drift apart.
 */

// ---- acquire: candidates, order, room ---------------------------------------------------
/**
 * The pure half of acquireSlot: which candidates, in which order, and whether one has room.
 * The memory store calls these functions; the Redis store's Lua script (redis-scripts.ts,
 * ACQUIRE_FN in SLOT_OPS) is a line-by-line transcription of them, and the contract suite runs the
 * same cases against both, so the two stores cannot drift apart.
 */
export interface AcquirePlanInput {
  /** Already de-duplicated (see uniqueCandidates). */
  candidates: readonly SlotCandidate[];
  order: AcquireOrder;
  /** Live in-flight count per candidate, same index as `candidates`. */
  inflight: readonly number[];
  /** The value INCR returned for the rotate key (1 on first use); ignored unless order is 'rotate'. */
  rotateCounter: number;
  /** The node the sticky key points at, if any. */
  stickyNode: NodeId | null;
}

/** Candidate indexes in the order acquireSlot tries them. */
export function acquirePlan(input: AcquirePlanInput): number[] {
  const { candidates, order, inflight } = input;
  const n = candidates.length;
  let indexes = candidates.map((_, i) => i);
  if (order === 'rotate' && n > 0) {
    // INCR starts at 1, so the first request of a fresh counter starts at candidate 0.
    const start = (input.rotateCounter - 1) % n;
    indexes = [...indexes.slice(start), ...indexes.slice(0, start)];
  } else if (order === 'least_loaded') {
    // Stable insertion sort on (busy, tier, load) (ties keep the given order), as ACQUIRE_FN
    // does: n is a handful of nodes, and Array.prototype.sort allocates a comparator run per call.
    const busy: number[] = [];
    const tier: number[] = [];
    const load: number[] = [];
    for (const i of indexes) {
      const total = inflight[i] + (candidates[i].extraLoad ?? 0);
      busy[i] = busyOf(candidates[i], total);
      tier[i] = candidates[i].tier ?? 0;
      load[i] = candidateLoad(candidates[i], total);
    }
    const later = (a: number, b: number) =>
      busy[a] !== busy[b] ? busy[a] > busy[b] : tier[a] !== tier[b] ? tier[a] > tier[b] : load[a] > load[b];
    for (let k = 1; k < n; k++) {
      const i = indexes[k];
      let j = k - 1;
      while (j >= 0 && later(indexes[j], i)) {
        indexes[j + 1] = indexes[j];
        j--;
      }
      indexes[j + 1] = i;
    }
  }
  if (input.stickyNode !== null) {
    const at = indexes.findIndex((i) => candidates[i].node === input.stickyNode);
    if (at > 0) indexes = [indexes[at], ...indexes.slice(0, at), ...indexes.slice(at + 1)];
  }
  return indexes;
}

/**
 * acquirePlan(input)[0] without a sticky node, and without building the order: what a
 * process that places an attempt itself needs (one pick per request), in one pass that
 * allocates nothing. The stable sort's first is the earliest candidate no other ranks before.
 */
export function firstInPlan(
  candidates: readonly SlotCandidate[],
  order: AcquireOrder,
  inflight: (node: NodeId) => number,
  rotateCounter: number,
): number {
  const n = candidates.length;
  if (n === 0) return -1;
  if (order === 'rotate') return (rotateCounter - 1) % n;
  if (order !== 'least_loaded') return 0;
  let best = 0;
  let bestBusy = 0;
  let bestTier = 0;
  let bestLoad = 0;
  for (let i = 0; i < n; i++) {
    const candidate = candidates[i];
    const total = inflight(candidate.node) + (candidate.extraLoad ?? 0);
    const busy = busyOf(candidate, total);
    const tier = candidate.tier ?? 0;
    const load = candidateLoad(candidate, total);
    if (i === 0 || busy < bestBusy || (busy === bestBusy && (tier < bestTier || (tier === bestTier && load < bestLoad)))) {
      best = i;
      bestBusy = busy;
      bestTier = tier;
      bestLoad = load;
    }
  }
  return best;
}

/** least_loaded's first key: 1 when the engine's own slots are all taken (live + outside load). */
function busyOf({ slots = 0 }: SlotCandidate, total: number): number {
  return slots > 0 && total >= slots ? 1 : 0;
}

/** least_loaded's last key: the load over the cap, or over the engine's slots when uncapped. */
function candidateLoad({ maxconn, slots = 0 }: SlotCandidate, total: number): number {
  return loadOf(total, maxconn > 0 ? maxconn : slots);
}

/** Capped nodes by fill ratio, uncapped nodes by raw count (interface doc of AcquireOrder). */
function loadOf(inflight: number, capacity: number): number {
  return capacity > 0 ? inflight / capacity : inflight;
}

/** maxconn 0 means no cap; otherwise a slot is free while fewer than maxconn leases are live. */
export function hasFreeSlot(inflight: number, maxconn: number): boolean {
  return maxconn === 0 || inflight < maxconn;
}

/** A node listed twice would be counted twice in one step; the first mention wins. */
export function uniqueCandidates(candidates: readonly SlotCandidate[]): SlotCandidate[] {
  const seen = new Set<NodeId>();
  return candidates.filter((c) => {
    if (seen.has(c.node)) return false;
    seen.add(c.node);
    return true;
  });
}

/**
 * Rejects requests that would corrupt shared state (NaN scores, negative caps, PX 0),
 * with a message naming the field: both stores throw the same TypeError.
 */
export function validateAcquireRequest(request: AcquireSlotRequest): void {
  const fail = (field: string, got: unknown, expected: string) => {
    throw new TypeError(`acquireSlot: ${field} must be ${expected}, got ${JSON.stringify(got) ?? String(got)}`);
  };
  if (!Array.isArray(request.candidates)) fail('candidates', request.candidates, 'an array');
  for (const [i, c] of request.candidates.entries()) {
    if (typeof c?.node !== 'string' || c.node === '') fail(`candidates[${i}].node`, c?.node, 'a node id');
    if (!Number.isInteger(c.maxconn) || c.maxconn < 0) fail(`candidates[${i}].maxconn`, c.maxconn, 'an integer ≥ 0');
    for (const hint of ['extraLoad', 'slots', 'tier'] as const) {
      const value = c[hint];
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) fail(`candidates[${i}].${hint}`, value, 'an integer ≥ 0');
    }
  }
  if (!['in_order', 'least_loaded', 'rotate'].includes(request.order)) {
    fail('order', request.order, 'in_order, least_loaded or rotate');
  }
  if (request.order === 'rotate' && (typeof request.rotateKey !== 'string' || request.rotateKey === '')) {
    fail('rotateKey', request.rotateKey, "a non-empty string with order 'rotate'");
  }
  if (typeof request.leaseId !== 'string' || request.leaseId === '') fail('leaseId', request.leaseId, 'a non-empty string');
  if (!isPositiveMs(request.leaseMs)) fail('leaseMs', request.leaseMs, 'an integer ≥ 1');
  if (!isPositiveMs(request.probeLeaseMs)) fail('probeLeaseMs', request.probeLeaseMs, 'an integer ≥ 1');
  if (request.sticky !== undefined) {
    if (typeof request.sticky.key !== 'string' || request.sticky.key === '') fail('sticky.key', request.sticky.key, 'a non-empty string');
    if (!isPositiveMs(request.sticky.ttlMs)) fail('sticky.ttlMs', request.sticky.ttlMs, 'an integer ≥ 1');
  }
  validateQueueTicket(request.queue);
}

/** Redis PX and scores take whole milliseconds; both stores demand them so they agree. */
export function isPositiveMs(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}

/**
 * Fleet-wide queue (AcquireSlotRequest.queue): how many requests the candidates could take
 * right now. A closed circuit offers its free slots, a half-open one at most its single
 * probe, an open one nothing; an uncapped node offers unlimited room.
 */
export function freeSlots(maxconn: readonly number[], inflight: readonly number[], gates: readonly CircuitGate[]): number {
  let free = 0;
  for (let i = 0; i < maxconn.length; i++) {
    if (gates[i] === 'blocked') continue;
    const room = maxconn[i] === 0 ? Infinity : Math.max(0, maxconn[i] - inflight[i]);
    free += gates[i] === 'probe' ? Math.min(1, room) : room;
  }
  return free;
}

/** First come, first served: a request with `ahead` tickets before it gets one of `free` slots only after them. */
export function mayTakeSlot(ahead: number, free: number): boolean {
  return ahead < free;
}

function validateQueueTicket(ticket: QueueTicket | undefined): void {
  if (ticket === undefined) return;
  if (typeof ticket.key !== 'string' || ticket.key === '') throw new TypeError('acquireSlot: queue.key must be a non-empty string');
  if (typeof ticket.ticket !== 'string' || ticket.ticket === '')
    throw new TypeError('acquireSlot: queue.ticket must be a non-empty string');
  if (!isPositiveMs(ticket.ttlMs)) throw new TypeError(`acquireSlot: queue.ttlMs must be an integer ≥ 1, got ${String(ticket.ttlMs)}`);
}

// ---- the circuit breaker -----------------------------------------------------------------

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

/**
 * The circuit after a batch of outcomes of attempts placed without a lease (recordOutcomes).
 * Only a closed circuit moves: the failures before the batch's first success add to the
 * count, and reaching the threshold opens it (the success came on a stale view and does not
 * undo that); otherwise a success leaves only the failures after it. Batches of several
 * replicas apply in the order they arrive, so N replicas whose failures together reach the
 * threshold within one report interval open the circuit, as one replica's would.
 * `opened` says the batch opened it (the store announces that).
 */
export function circuitAfterOutcomes(
  circuit: CircuitRecord | undefined,
  batch: NodeOutcomes,
  breaker: { threshold: number; ttlMs: number },
  nowMs: number,
): { circuit: CircuitRecord | null; opened: boolean } {
  if (circuit !== undefined && circuit.openUntilMs !== 0) return { circuit, opened: false };
  const probeUntilMs = circuit?.probeUntilMs ?? 0;
  let failures = (circuit?.failures ?? 0) + batch.leadingFailures;
  if (failures < breaker.threshold && batch.succeeded) failures = batch.trailingFailures;
  if (failures >= breaker.threshold) return { circuit: { failures, openUntilMs: nowMs + breaker.ttlMs, probeUntilMs }, opened: true };
  return { circuit: failures === 0 ? null : { failures, openUntilMs: 0, probeUntilMs }, opened: false };
}

/** A batch that cannot be applied is a caller bug: say which field. */
export function validateOutcomes(outcomes: readonly NodeOutcomes[], breaker: { threshold: number; ttlMs: number }): void {
  validateRelease({ outcome: 'failure', breaker });
  if (!Array.isArray(outcomes)) throw new TypeError('recordOutcomes: outcomes must be an array');
  for (const [i, o] of outcomes.entries()) {
    if (typeof o?.node !== 'string' || o.node === '') throw new TypeError(`recordOutcomes: outcomes[${i}].node must be a node id`);
    for (const field of ['leadingFailures', 'trailingFailures'] as const) {
      if (!Number.isSafeInteger(o[field]) || o[field] < 0) {
        throw new TypeError(`recordOutcomes: outcomes[${i}].${field} must be an integer ≥ 0, got ${String(o[field])}`);
      }
    }
    if (typeof o.succeeded !== 'boolean') throw new TypeError(`recordOutcomes: outcomes[${i}].succeeded must be a boolean`);
    if (!o.succeeded && o.trailingFailures !== 0) {
      throw new TypeError(`recordOutcomes: outcomes[${i}].trailingFailures must be 0 without a success`);
    }
  }
}

export function validateInflightReport(report: InflightReport): void {
  if (typeof report?.replicaId !== 'string' || report.replicaId === '') {
    throw new TypeError('shareInflight: replicaId must be a non-empty string');
  }
  if (!isPositiveMs(report.ttlMs)) throw new TypeError(`shareInflight: ttlMs must be an integer ≥ 1, got ${String(report.ttlMs)}`);
  if (!Array.isArray(report.nodes)) throw new TypeError('shareInflight: nodes must be an array');
  for (const [node, count] of Object.entries(report.counts ?? {})) {
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new TypeError(`shareInflight: counts[${node}] must be an integer ≥ 0, got ${String(count)}`);
    }
  }
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

// ---- reserves: slots a replica hands out itself ------------------------------------------
/** How many slots a reserve gets: what leaves keepFree free, only through a closed circuit. */
export function reserveGrant(live: number, gate: CircuitGate, request: ReserveSlotsRequest): number {
  if (gate !== 'pass') return 0;
  return Math.max(0, Math.min(request.leaseIds.length, request.maxconn - request.keepFree - live));
}

/** The most lease ids one reserveSlots call takes: one step must stay short in Redis. */
export const MAX_RESERVE = 1000;

export function validateReserveRequest(request: ReserveSlotsRequest): void {
  const fail = (field: string, got: unknown, expected: string) => {
    throw new TypeError(`reserveSlots: ${field} must be ${expected}, got ${JSON.stringify(got) ?? String(got)}`);
  };
  if (typeof request?.node !== 'string' || request.node === '') fail('node', request?.node, 'a node id');
  if (!Number.isSafeInteger(request.maxconn) || request.maxconn < 1) fail('maxconn', request.maxconn, 'an integer ≥ 1');
  if (!Number.isSafeInteger(request.keepFree) || request.keepFree < 0 || request.keepFree > request.maxconn) {
    fail('keepFree', request.keepFree, 'an integer from 0 to maxconn');
  }
  if (!isPositiveMs(request.leaseMs)) fail('leaseMs', request.leaseMs, 'an integer ≥ 1');
  const ids = request.leaseIds;
  if (!Array.isArray(ids) || ids.length < 1 || ids.length > MAX_RESERVE) fail('leaseIds', ids?.length, `1 to ${MAX_RESERVE} ids`);
  for (const id of ids) if (typeof id !== 'string' || id === '') fail('leaseIds[]', id, 'a non-empty string');
}
