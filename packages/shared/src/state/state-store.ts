import type { EngineLoadReading } from '../engine-load.ts';
import type { CircuitInfo, NodeId, NodeState } from '../types.ts';

/**
 * Everything gateway replicas and the monitor share. Two implementations: Redis (many
 * processes) and memory (one process, `pnpm start`); one contract suite runs against both.
 *
 * Hot-path budget: an attempt on a node with no cap whose circuit the gateway sees closed
 * makes no call at all: the gateway places it itself, shares its in-flight counts with
 * shareInflight and reports outcomes with recordOutcomes, each in batches on a short
 * interval; so does one on a capped node's slot the gateway leased ahead with reserveSlots
 * (in blocks, given back with returnSlots). An attempt that needs a shared decision (a capped node's slot, the half-open
 * probe, a sticky session, the queue) makes one call to acquireSlot before forwarding and
 * one to releaseSlot at the end; in the Redis store each is one round trip (one Lua script).
 * Fleet reads (listNodes) are for caches refreshed on `fleet-changed` or a short interval,
 * never per request.
 */
export interface StateStore {
  readonly kind: 'redis' | 'memory';

  // ---- fleet: written by the monitor --------------------------------------------------
  /**
   * Writes one node's whole record atomically; announces the change. The record is fresh
   * for `ttlMs`; with `options.keepMs` it then stays, stale, for that much longer — unless
   * a scan that completed after it was written passed it over (see listFleet).
   */
  putNode(state: NodeState, ttlMs: number, options?: PutNodeOptions): Promise<void>;
  /**
   * Marks a known node unhealthy after a failed probe, WITHOUT refreshing its TTL, so a
   * server that stays dead leaves the state by itself. No-op for an unknown node.
   */
  markNodeUnhealthy(node: NodeId, error: string, checkedAtMs: number): Promise<void>;
  /** Every usable node record (fresh or stale, as in listFleet), sorted by node id. */
  listNodes(): Promise<NodeState[]>;
  /**
   * The fleet as a gateway should see it, judged by the store's clock:
   *  - `fresh`: refreshed by a monitor within its TTL;
   *  - `stale`: past its TTL, but no scan newer than the one that last wrote it has
   *    completed: the monitor is gone or stalled, so the record is the best knowledge there is;
   *  - left out: past its TTL and passed over by a completed scan (the server is gone), or
   *    past its keep time.
   * Plus the monitor's heartbeat (the lease) and the newest completed scan.
   */
  listFleet(): Promise<FleetSnapshot>;
  /**
   * Calls `listener` after any putNode/markNodeUnhealthy/completeScan by any process, and
   * after a circuit opened (releaseSlot, recordOutcomes) or a probe closed one: gateways
   * that place attempts by their cached circuits learn of it at once. Returns unsubscribe.
   */
  onFleetChange(listener: () => void): () => void;

  // ---- engine load: written by the monitor's load poller, read by gateways' caches --------
  /**
   * Replaces the readings of the given nodes, each with `ttlMs` (readers also ignore
   * readings older than ENGINE_LOAD_MAX_AGE_POLLS intervals). One round trip for the whole
   * fleet; announces nothing: gateways read loads on their cache refresh.
   */
  putEngineLoads(readings: readonly EngineLoadReading[], ttlMs: number): Promise<void>;
  /** The unexpired reading of each node that has one; nodes without are left out. */
  getEngineLoads(nodes: readonly NodeId[]): Promise<Record<NodeId, EngineLoadReading>>;
  // ---- Responses API: which node made which response --------------------------------------
  /**
   * Remembers that `node` made the response `responseId` (OpenAI Responses API), for ttlMs:
   * follow-ups (`previous_response_id`) and the by-id calls must reach the server that
   * keeps it. Ids are upstream-chosen: at most RESPONSE_ID_MAX_CHARS characters.
   */
  putResponseOwner(responseId: string, node: NodeId, ttlMs: number): Promise<void>;
  /** The node that made the response, or null when it is unknown or expired. */
  getResponseOwner(responseId: string): Promise<NodeId | null>;

  // ---- the monitor's lease and scan numbers --------------------------------------------
  /**
   * Takes the monitor lease for `monitorId` when it is free, or renews it (for `leaseMs`)
   * when it already holds it; a lease held by another monitor is left alone. Answers the
   * holder after this step: the caller scans only while that is itself.
   */
  claimMonitorLease(monitorId: string, leaseMs: number): Promise<MonitorLease>;
  /** Frees the lease if `monitorId` holds it (a monitor that stops), so another takes over at once. */
  releaseMonitorLease(monitorId: string): Promise<void>;
  /** A scan number greater than every one handed out or completed before, across monitors. */
  beginScan(): Promise<number>;
  /**
   * Records that scan `scan` wrote every node it found. From then on a record past its TTL
   * whose last write came from an earlier scan is gone. A number lower than the newest
   * completed one changes nothing. Announces a fleet change.
   */
  completeScan(scan: number, monitorId: string): Promise<void>;

  // ---- capacity, circuit breaker, routing position, sticky sessions: the gateway ---------
  /** One atomic step: pick the first candidate that may take a request now and lease a slot on it. */
  acquireSlot(request: AcquireSlotRequest): Promise<AcquireSlotResult>;
  /** Extends leases this process holds (called periodically for all of them, in one batch). */
  renewLeases(leases: readonly LeaseRef[], leaseMs: number): Promise<void>;
  /** Frees the slot and records the attempt's outcome in the node's circuit, in one step. */
  releaseSlot(release: ReleaseSlotRequest): Promise<void>;
  /**
   * Leases slots on a capped node for a replica to hand out itself (a reserve), in one
   * atomic step: only while the node's circuit is closed, and only as many as leave
   * `keepFree` of its `maxconn` slots free. The leases count against the cap like any
   * other (acquireSlot, getInflight), are renewed with renewLeases and given back with
   * returnSlots; one that lapses frees its slot. Answers how many of `leaseIds` (a prefix)
   * were leased and the node's live count after the step.
   */
  reserveSlots(request: ReserveSlotsRequest): Promise<ReserveSlotsResult>;
  /** Frees reserved slots (no circuit outcome: the attempts that used them reported theirs); announces them freed. */
  returnSlots(leases: readonly LeaseRef[]): Promise<void>;
  /**
   * Takes waiting tickets out of their queues at once (a waiter that timed out or whose
   * client left); unknown tickets are ignored. A ticket that got a slot left its queue then.
   */
  leaveQueue(tickets: readonly QueueTicketRef[]): Promise<void>;
  /** Keeps this process's waiting tickets alive (periodically, in one batch), like renewLeases. */
  renewQueueTickets(tickets: readonly QueueTicketRef[], ttlMs: number): Promise<void>;
  /** Calls `listener` with the node id whenever any process releases a slot; returns unsubscribe. */
  onSlotFreed(listener: (node: NodeId) => void): () => void;
  /**
   * Live fleet-wide in-flight count per node: live leases plus every replica's unexpired
   * shareInflight report.
   */
  getInflight(nodes: readonly NodeId[]): Promise<Record<NodeId, number>>;
  /**
   * One replica's in-flight counts of the attempts it placed without a lease (uncapped
   * nodes): replaces that replica's previous report and counts in getInflight for
   * `report.ttlMs` (a replica that dies stops counting by itself). Answers, for
   * `report.nodes`, the fleet-wide count WITHOUT this replica's report: live leases plus
   * every other replica's unexpired report, so the caller adds its own live counts.
   */
  shareInflight(report: InflightReport): Promise<Record<NodeId, number>>;
  /**
   * The circuit outcomes of attempts placed without a lease, batched per node (see
   * NodeOutcomes): a closed circuit counts the failures and opens once they reach the
   * threshold (announced as a fleet change); a success resets the count. A batch for a
   * circuit that is open or half-open changes nothing: those attempts went out on a stale
   * view, and the half-open probe (acquireSlot) alone decides when it closes.
   */
  recordOutcomes(outcomes: readonly NodeOutcomes[], breaker: { threshold: number; ttlMs: number }): Promise<void>;
  /** Circuit state per node; a node never seen is closed with 0 failures. */
  getCircuits(nodes: readonly NodeId[]): Promise<Record<NodeId, CircuitInfo>>;

  // ---- lifecycle ------------------------------------------------------------------------
  /** Resolves when the store is usable; rejects when it is not (health checks). */
  ping(): Promise<void>;
  /** How the store is serving right now (/health, metrics): answers at once, no I/O. */
  health(): StateStoreHealth;
  close(): Promise<void>;
}

export interface StateStoreHealth {
  /**
   * true while the shared state is unreachable and this process serves on local state
   * instead (ResilientStateStore): caps, circuits and queues then hold per replica only.
   * The memory and plain Redis stores are never degraded (the latter fails instead).
   */
  degraded: boolean;
  /** What made the store degraded (the Redis error); null while it is not. */
  reason: string | null;
  /** Calls to the shared state that failed as unreachable since start (each was then served locally). */
  remoteFailures: number;
}

/** What a store that has no fallback answers to health(). */
export const NEVER_DEGRADED: Readonly<StateStoreHealth> = Object.freeze({ degraded: false, reason: null, remoteFailures: 0 });

export interface PutNodeOptions {
  /** How long the record outlives its TTL as stale (FLEET_STALE_LIMIT_SECS); 0 (default): it expires with it. */
  keepMs?: number;
  /** The scan (beginScan) that wrote the record; 0 (default) for a record no scan wrote. */
  scan?: number;
}

export type NodeFreshness = 'fresh' | 'stale';

export interface FleetNode {
  state: NodeState;
  freshness: NodeFreshness;
  /** Store clock (epoch ms) until which the record is fresh. */
  freshUntilMs: number;
  /** The scan that last wrote it (0: none). */
  scan: number;
}

/** The monitor lease, which is also the monitor's heartbeat: it lives while its holder renews it. */
export interface MonitorLease {
  monitorId: string;
  /** Store clock (epoch ms) when this monitor took the lease. */
  sinceMs: number;
  /** Store clock (epoch ms) when the lease runs out unless renewed. */
  untilMs: number;
}

export interface CompletedScan {
  scan: number;
  monitorId: string;
  /** Store clock (epoch ms). */
  completedAtMs: number;
}

export interface FleetSnapshot {
  /** Sorted by node id. */
  nodes: FleetNode[];
  /** The live monitor lease (heartbeat), or null: no monitor is scanning now. */
  monitor: MonitorLease | null;
  /** The newest completed scan, or null before the first (it outlives the monitor). */
  lastScan: CompletedScan | null;
  /** The store's clock at this read: compare freshUntilMs, untilMs and completedAtMs with it. */
  nowMs: number;
}

export interface SlotCandidate {
  node: NodeId;
  /** 0 = no cap (the lease is still recorded, so in-flight counts stay true). */
  maxconn: number;
  /**
   * Ordering hints for `least_loaded`, all optional (0 when absent). They change the order
   * the step tries the candidates in, never whether one has room: the cap is `maxconn` alone.
   *  - `extraLoad`: requests on the node that no replica holds a lease for (an engine's own
   *    queue from clients outside ai-lb), added to the live in-flight count;
   *  - `slots`: requests the node runs at once (0 = unknown): a node whose live in-flight +
   *    extraLoad reaches it is busy and goes after every node that is not; an uncapped node
   *    is also loaded relative to it;
   *  - `tier`: lower first among nodes equally busy (warm model, NODE_PRIORITY).
   */
  extraLoad?: number;
  slots?: number;
  tier?: number;
}

/**
 * How acquireSlot walks the candidates:
 *  - `in_order`: as given (RANDOM and P2C order the list beforehand, in pure code);
 *  - `least_loaded`: lowest live inflight/maxconn first (uncapped nodes by raw inflight),
 *    ties in the given order — exact across replicas because it reads live counts; with
 *    the candidates' hints (SlotCandidate): not busy before busy, then tier, then
 *    (live inflight + extraLoad) over maxconn, else over slots, else raw;
 *  - `rotate`: start at INCR(rotateKey) mod n — a round-robin position shared by replicas.
 */
export type AcquireOrder = 'in_order' | 'least_loaded' | 'rotate';

export interface AcquireSlotRequest {
  candidates: readonly SlotCandidate[];
  order: AcquireOrder;
  /**
   * Required with order 'rotate': the round-robin counter, usually per model. A name (e.g. the
   * model id), not a Redis key: the store keeps it under its own prefix (redisKeys.roundRobin).
   */
  rotateKey?: string;
  leaseId: string;
  leaseMs: number;
  /**
   * Circuit breaker: a node whose circuit is open is skipped until openUntil; after that
   * one request at a time is let through as the half-open probe (probeLeaseMs bounds how
   * long a probe that never reports back blocks the next one).
   */
  probeLeaseMs: number;
  /**
   * Sticky session: the node stored under `key` is tried first when it is a candidate;
   * after a successful acquire the key points at the chosen node, for ttlMs. `key` is a name
   * (e.g. `${model}:${sessionId}`), not a Redis key: the store prefixes it (redisKeys.sticky).
   */
  sticky?: { key: string; ttlMs: number };
  /**
   * Fleet-wide first come, first served (QUEUE_TIMEOUT_MS). While the queue `queue.key`
   * holds live tickets, the step takes a slot only when fewer tickets are ahead of this one
   * than there are free slots among the candidates (a newcomer has every ticket ahead of
   * it); otherwise it answers 'capacity'. With `join`, a ticket that got no slot joins the
   * back of the queue in the same step (no extra round trip), and a queued ticket that gets
   * a slot leaves it. Every step refreshes the ticket's ttlMs: a ticket nobody renews
   * (a replica that died) leaves the queue by itself. An empty queue costs one ZCARD.
   */
  queue?: QueueTicket;
}

export interface QueueTicketRef {
  /** A name (usually the model), not a Redis key: the store prefixes it (redisKeys.queue). */
  key: string;
  ticket: string;
}

export interface QueueTicket extends QueueTicketRef {
  ttlMs: number;
  join: boolean;
}

export interface AcquireSlotResult {
  /** The node a slot was leased on, or null when no candidate could take the request. */
  node: NodeId | null;
  /** This request is the half-open probe of `node`'s circuit. */
  probe: boolean;
  /** Why nothing was acquired: every candidate was full ('capacity') or blocked by its circuit. */
  reason: 'ok' | 'capacity' | 'circuit';
  /** Live in-flight counts of the candidates after this step (feeds caches and metrics). */
  inflight: Record<NodeId, number>;
}

export interface LeaseRef {
  node: NodeId;
  leaseId: string;
}

export interface ReserveSlotsRequest {
  node: NodeId;
  /** The node's cap, > 0: an uncapped node needs no reserve. */
  maxconn: number;
  /** One lease id per slot wanted (1 to 1,000); the first ones are used. */
  leaseIds: readonly string[];
  leaseMs: number;
  /** Slots that must stay free for the other replicas after this step (0 to maxconn). */
  keepFree: number;
}

export interface ReserveSlotsResult {
  /** How many slots were leased: the first `granted` of leaseIds. */
  granted: number;
  /** Live leases on the node after this step, the reserve included. */
  inflight: number;
}

/** 'neutral' leaves the circuit as it is (client errors, client aborts). */
export type AttemptOutcome = 'success' | 'failure' | 'neutral';

export interface ReleaseSlotRequest extends LeaseRef {
  outcome: AttemptOutcome;
  /** The slot was the half-open probe: success closes the circuit, failure re-opens it. */
  probe: boolean;
  breaker: { threshold: number; ttlMs: number };
}

/** Longer response ids are refused: they are upstream-chosen and end up in a key. */
export const RESPONSE_ID_MAX_CHARS = 256;

/** Throws a TypeError for an id or ttl a store must not keep. */
export function validateResponseOwner(responseId: string, ttlMs: number): void {
  if (typeof responseId !== 'string' || responseId === '' || responseId.length > RESPONSE_ID_MAX_CHARS) {
    throw new TypeError(`putResponseOwner: responseId must be 1 to ${RESPONSE_ID_MAX_CHARS} characters`);
  }
  if (!Number.isInteger(ttlMs) || ttlMs < 1) throw new TypeError(`putResponseOwner: ttlMs must be an integer ≥ 1, got ${String(ttlMs)}`);
}

export interface InflightReport {
  /** Unique per gateway process (and per gateway instance within one). */
  replicaId: string;
  /** In flight per node now; nodes left out count 0. Whole numbers ≥ 0. */
  counts: Record<NodeId, number>;
  /** How long the report counts unless replaced: a few report intervals. */
  ttlMs: number;
  /** The nodes to answer counts for (the caller's fleet). */
  nodes: readonly NodeId[];
}

/**
 * One node's outcomes since the previous batch, in the order they happened, reduced to
 * what a circuit needs: `leadingFailures` before the first success (all of them when
 * there was none), whether a success came, and `trailingFailures` after the last one.
 * Neutral outcomes (client aborts, the caller's 4xx) are not reported.
 */
export interface NodeOutcomes {
  node: NodeId;
  leadingFailures: number;
  succeeded: boolean;
  trailingFailures: number;
}
