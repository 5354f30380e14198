import type { ChainableCommander, Redis } from 'ioredis';
import { validateEngineLoads, type EngineLoadReading } from '../engine-load.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { KEY_TTL_MS, redisKeys, type RedisKeys } from '../redis-keys.ts';
import type { CircuitInfo, NodeId, NodeState } from '../types.ts';
import { circuitInfo, isPositiveMs, validateInflightReport, validateOutcomes, validateReserveRequest } from './slot-rules.ts';
import type { RedisSentinelTarget } from '../config/load-config.ts';
import { createRedisConnection, watchConnection, type RedisConnectionOptions } from './redis-connection.ts';
import * as scripts from './redis-scripts.ts';
import { RedisSlotOps, runRedis } from './redis-slot-ops.ts';
import { judgeFleet, validateMonitorId, validatePutNodeOptions, type StoredNode } from './fleet-freshness.ts';
import {
  NEVER_DEGRADED,
  type FleetSnapshot,
  type InflightReport,
  type LeaseRef,
  type MonitorLease,
  type NodeOutcomes,
  type PutNodeOptions,
  type QueueTicketRef,
  type ReserveSlotsRequest,
  type ReserveSlotsResult,
  type StateStore,
  type StateStoreHealth,
  RESPONSE_ID_MAX_CHARS,
  validateResponseOwner,
} from './state-store.ts';

/**
 * Two ways to build one:
 *  - `{ url, keyPrefix }` or `{ sentinel, keyPrefix }`: the store opens its own fail-fast
 *    connection (createRedisConnection) and closes it in close(); its pub/sub connection is
 *    a duplicate, so it follows a Sentinel promotion too;
 *  - `{ client, subscriber?, keyPrefix }`: it uses a connection you own (close() leaves it
 *    open); pub/sub then goes over `subscriber`, or over `client.duplicate()`.
 * There is no clock option on purpose: every expiry is decided by Redis' own TIME inside
 * the scripts, so replicas with skewed clocks still agree.
 */
export type RedisStateStoreOptions =
  | (({ url: string } | { sentinel: RedisSentinelTarget }) & { keyPrefix: string } & RedisConnectionOptions)
  | { client: Redis; subscriber?: Redis; keyPrefix: string; connectTimeoutMs?: number; log?: Logger };

/** LIST_FLEET: now, [id, score, …], completed, completedBy, completedAt, lease holder, lease since, lease PTTL. */
type ListFleetReply = [number, string[], string | null, string | null, string | null, string | null, string | null, number];
/** The defineCommand'ed scripts, as ioredis adds them to the client and its pipelines. */
interface ScriptCommands {
  aiLbPutNode(...args: (string | number)[]): Promise<number>;
  aiLbMarkNodeUnhealthy(...args: (string | number)[]): Promise<number>;
  aiLbListFleet(...args: (string | number)[]): Promise<ListFleetReply>;
  aiLbClaimMonitorLease(...args: (string | number)[]): Promise<[string, string, number, number]>;
  aiLbReleaseMonitorLease(...args: (string | number)[]): Promise<number>;
  aiLbBeginScan(...args: (string | number)[]): Promise<number>;
  aiLbCompleteScan(...args: (string | number)[]): Promise<number>;
  aiLbShareInflight(...args: (string | number)[]): Promise<ShareInflightReply>;
  aiLbRecordOutcomes(...args: (string | number)[]): Promise<number>;
  aiLbRenewQueueTickets(...args: (string | number)[]): Promise<number>;
  aiLbReserveSlots(...args: (string | number)[]): Promise<[number, number]>;
}

/** SHARE_INFLIGHT: live leases per node, unexpired replica ids, their reports (JSON). */
type ShareInflightReply = [number[], string[], (string | null)[]];

/** Leases per RENEW_LEASES call, so one renewal never blocks Redis for long. */
const RENEW_BATCH = 500;

export class RedisStateStore implements StateStore {
  readonly kind = 'redis' as const;
  readonly keys: RedisKeys;
  private readonly client: Redis;
  private readonly commands: ScriptCommands;
  private readonly ownsClient: boolean;
  private readonly connectTimeoutMs: number;
  private readonly log: Logger;
  private subscriber: Redis | undefined;
  private readonly ownsSubscriber: boolean;
  private readonly givenSubscriber: Redis | undefined;
  private readonly fleetListeners = new Set<() => void>();
  private readonly slotListeners = new Set<(node: NodeId) => void>();
  private subscriptions: Promise<unknown> = Promise.resolve();
  private readonly slotOps: RedisSlotOps;
  /**
   * The hot path: one SLOT_OPS call per event-loop turn carries every acquire and release
   * (redis-slot-ops.ts). The store hands RedisSlotOps' own functions out, not a wrapper of
   * its own: a request crosses one file fewer.
   */
  readonly acquireSlot: StateStore['acquireSlot'];
  readonly releaseSlot: StateStore['releaseSlot'];

  constructor(options: RedisStateStoreOptions) {
    this.keys = redisKeys(options.keyPrefix);
    this.log = options.log ?? silentLogger;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 2000;
    if ('url' in options || 'sentinel' in options) {
      this.client = createRedisConnection('url' in options ? options.url : options.sentinel, { ...options, log: this.log });
      this.ownsClient = true;
    } else {
      this.client = options.client;
      this.ownsClient = false;
      this.givenSubscriber = options.subscriber;
    }
    this.ownsSubscriber = this.givenSubscriber === undefined;
    this.commands = defineScripts(this.client);
    this.slotOps = new RedisSlotOps(this.client, this.keys, this.connectTimeoutMs);
    this.acquireSlot = this.slotOps.acquireSlot;
    this.releaseSlot = this.slotOps.releaseSlot;
  }

  async putNode(state: NodeState, ttlMs: number, options?: PutNodeOptions): Promise<void> {
    if (typeof state?.node !== 'string' || state.node === '') throw new TypeError('putNode: state.node must be a node id');
    if (!isPositiveMs(ttlMs)) throw new TypeError(`putNode: ttlMs must be an integer ≥ 1, got ${String(ttlMs)}`);
    const { keepMs, scan } = validatePutNodeOptions(options);
    const { node } = state;
    await this.run('putNode', () =>
      this.commands.aiLbPutNode(
        this.keys.node(node),
        this.keys.nodeIndex(),
        JSON.stringify(state),
        ttlMs,
        node,
        this.keys.fleetChangedChannel(),
        keepMs,
        scan,
      ),
    );
  }

  async markNodeUnhealthy(node: NodeId, error: string, checkedAtMs: number): Promise<void> {
    await this.run('markNodeUnhealthy', () =>
      this.commands.aiLbMarkNodeUnhealthy(this.keys.node(node), String(error), checkedAtMs, node, this.keys.fleetChangedChannel()),
    );
  }

  async listNodes(): Promise<NodeState[]> {
    return (await this.listFleet()).nodes.map((n) => n.state);
  }

  async listFleet(): Promise<FleetSnapshot> {
    return this.run('listFleet', async () => {
      const [now, index, completed, completedBy, completedAt, holder, since, leaseTtl] = await this.commands.aiLbListFleet(
        this.keys.nodeIndex(),
        this.keys.scans(),
        this.keys.monitorLease(),
      );
      const ids: NodeId[] = [];
      const expiries: number[] = [];
      for (let i = 0; i < index.length; i += 2) {
        ids.push(index[i]);
        expiries.push(Number(index[i + 1]));
      }
      // A record can expire between the two steps: MGET then says nil and it is skipped.
      const raws = ids.length === 0 ? [] : await this.client.mget(ids.map((id) => this.keys.node(id)));
      const records = raws.flatMap((raw, i) => (raw === null ? [] : this.parseNode(raw, expiries[i])));
      const lastScan =
        completed === null ? null : { scan: Number(completed), monitorId: completedBy ?? '', completedAtMs: Number(completedAt) };
      const monitor = holder === null || leaseTtl < 0 ? null : { monitorId: holder, sinceMs: Number(since), untilMs: now + leaseTtl };
      return { nodes: judgeFleet(records, now, lastScan?.scan ?? 0), monitor, lastScan, nowMs: now };
    });
  }

  async claimMonitorLease(monitorId: string, leaseMs: number): Promise<MonitorLease> {
    validateMonitorId('claimMonitorLease', monitorId);
    if (!isPositiveMs(leaseMs)) throw new TypeError(`claimMonitorLease: leaseMs must be an integer ≥ 1, got ${String(leaseMs)}`);
    const [holder, since, ttl, now] = await this.run('claimMonitorLease', () =>
      this.commands.aiLbClaimMonitorLease(this.keys.monitorLease(), monitorId, leaseMs),
    );
    return { monitorId: holder, sinceMs: Number(since), untilMs: now + ttl };
  }

  async releaseMonitorLease(monitorId: string): Promise<void> {
    await this.run('releaseMonitorLease', () => this.commands.aiLbReleaseMonitorLease(this.keys.monitorLease(), monitorId));
  }

  async beginScan(): Promise<number> {
    return this.run('beginScan', () => this.commands.aiLbBeginScan(this.keys.scans(), KEY_TTL_MS.scans));
  }

  async completeScan(scan: number, monitorId: string): Promise<void> {
    validateMonitorId('completeScan', monitorId);
    if (!Number.isSafeInteger(scan) || scan < 1) throw new TypeError(`completeScan: scan must be an integer ≥ 1, got ${String(scan)}`);
    await this.run('completeScan', () =>
      this.commands.aiLbCompleteScan(this.keys.scans(), scan, monitorId, KEY_TTL_MS.scans, this.keys.fleetChangedChannel()),
    );
  }

  onFleetChange(listener: () => void): () => void {
    return this.listen(this.fleetListeners, listener, this.keys.fleetChangedChannel());
  }

  async putResponseOwner(responseId: string, node: NodeId, ttlMs: number): Promise<void> {
    validateResponseOwner(responseId, ttlMs);
    await this.run('putResponseOwner', () => this.client.set(this.keys.responseOwner(responseId), node, 'PX', ttlMs));
  }

  async getResponseOwner(responseId: string): Promise<NodeId | null> {
    if (responseId === '' || responseId.length > RESPONSE_ID_MAX_CHARS) return null;
    return this.run('getResponseOwner', () => this.client.get(this.keys.responseOwner(responseId)));
  }

  async putEngineLoads(readings: readonly EngineLoadReading[], ttlMs: number): Promise<void> {
    validateEngineLoads(readings, ttlMs);
    if (readings.length === 0) return;
    await this.run('putEngineLoads', async () => {
      // One pipeline, one round trip: a SET with its own expiry per node, so a node the
      // poller stops reading loses its reading by itself.
      const pipeline = this.client.pipeline();
      for (const reading of readings) pipeline.set(this.keys.engineLoad(reading.node), JSON.stringify(reading), 'PX', ttlMs);
      throwFirstError(await pipeline.exec());
    });
  }

  async getEngineLoads(nodes: readonly NodeId[]): Promise<Record<NodeId, EngineLoadReading>> {
    if (nodes.length === 0) return {};
    const raw = await this.run('getEngineLoads', () => this.client.mget(nodes.map((node) => this.keys.engineLoad(node))));
    const found: Record<NodeId, EngineLoadReading> = {};
    nodes.forEach((node, i) => {
      const reading = raw[i] === null ? undefined : this.parseEngineLoad(raw[i]);
      if (reading !== undefined) found[node] = reading;
    });
    return found;
  }

  async renewLeases(leases: readonly LeaseRef[], leaseMs: number): Promise<void> {
    if (!isPositiveMs(leaseMs)) throw new TypeError(`renewLeases: leaseMs must be an integer ≥ 1, got ${String(leaseMs)}`);
    if (leases.length === 0) return;
    await this.run('renewLeases', async () => {
      // One pipeline (one round trip) of script calls; each call renews a batch atomically.
      const pipeline = this.client.pipeline() as ChainableCommander & Record<string, (...args: unknown[]) => unknown>;
      for (let start = 0; start < leases.length; start += RENEW_BATCH) {
        const batch = leases.slice(start, start + RENEW_BATCH);
        pipeline.aiLbRenewLeases(batch.length, ...batch.map((l) => this.keys.slots(l.node)), leaseMs, ...batch.map((l) => l.leaseId));
      }
      throwFirstError(await pipeline.exec());
    });
  }

  async reserveSlots(request: ReserveSlotsRequest): Promise<ReserveSlotsResult> {
    validateReserveRequest(request);
    const { node, maxconn, keepFree, leaseMs, leaseIds } = request;
    const [granted, inflight] = await this.run('reserveSlots', () =>
      this.commands.aiLbReserveSlots(this.keys.slots(node), this.keys.circuit(node), maxconn, keepFree, leaseMs, ...leaseIds),
    );
    return { granted, inflight };
  }

  async returnSlots(leases: readonly LeaseRef[]): Promise<void> {
    if (leases.length === 0) return;
    const byNode = new Map<NodeId, string[]>();
    for (const { node, leaseId } of leases) {
      const ids = byNode.get(node);
      if (ids === undefined) byNode.set(node, [leaseId]);
      else ids.push(leaseId);
    }
    await this.run('returnSlots', async () => {
      const pipeline = this.client.pipeline();
      for (const [node, ids] of byNode) pipeline.zrem(this.keys.slots(node), ...ids).publish(this.keys.slotFreedChannel(), node);
      throwFirstError(await pipeline.exec());
    });
  }

  async leaveQueue(tickets: readonly QueueTicketRef[]): Promise<void> {
    if (tickets.length === 0) return;
    await this.run('leaveQueue', async () => {
      const pipeline = this.client.pipeline();
      for (const { key, ticket } of tickets) pipeline.zrem(this.keys.queue(key), ticket).zrem(this.keys.queueExpiry(key), ticket);
      throwFirstError(await pipeline.exec());
    });
  }

  async renewQueueTickets(tickets: readonly QueueTicketRef[], ttlMs: number): Promise<void> {
    if (!isPositiveMs(ttlMs)) throw new TypeError(`renewQueueTickets: ttlMs must be an integer ≥ 1, got ${String(ttlMs)}`);
    if (tickets.length === 0) return;
    const keys = tickets.flatMap(({ key }) => [this.keys.queue(key), this.keys.queueExpiry(key)]);
    await this.run('renewQueueTickets', () =>
      this.commands.aiLbRenewQueueTickets(keys.length, ...keys, ttlMs, ...tickets.map((t) => t.ticket)),
    );
  }

  onSlotFreed(listener: (node: NodeId) => void): () => void {
    return this.listen(this.slotListeners, listener, this.keys.slotFreedChannel());
  }

  async getInflight(nodes: readonly NodeId[]): Promise<Record<NodeId, number>> {
    if (nodes.length === 0) return {};
    return this.inflight('getInflight', nodes, '', '', 1);
  }

  async shareInflight(report: InflightReport): Promise<Record<NodeId, number>> {
    validateInflightReport(report);
    const counts: Record<NodeId, number> = {};
    let any = false;
    for (const [node, count] of Object.entries(report.counts)) {
      if (count > 0) {
        counts[node] = count;
        any = true;
      }
    }
    return this.inflight('shareInflight', report.nodes, report.replicaId, any ? JSON.stringify(counts) : '', report.ttlMs);
  }

  /** SHARE_INFLIGHT: leases plus the unexpired reports of every replica but `replicaId`. */
  private async inflight(
    operation: string,
    nodes: readonly NodeId[],
    replicaId: string,
    countsJson: string,
    ttlMs: number,
  ): Promise<Record<NodeId, number>> {
    const [leases, replicas, reports] = await this.run(operation, () =>
      this.commands.aiLbShareInflight(
        2 + nodes.length,
        this.keys.replicaInflight(),
        this.keys.replicaInflightExpiry(),
        ...nodes.map((n) => this.keys.slots(n)),
        replicaId,
        countsJson,
        ttlMs,
      ),
    );
    const counts: Record<NodeId, number> = {};
    for (let i = 0; i < nodes.length; i++) counts[nodes[i]] = leases[i];
    for (let i = 0; i < replicas.length; i++) {
      if (replicas[i] === replicaId || reports[i] === null) continue;
      const shared = this.parseReport(reports[i]!);
      for (const node of nodes) counts[node] += shared[node] ?? 0;
    }
    return counts;
  }

  async recordOutcomes(outcomes: readonly NodeOutcomes[], breaker: { threshold: number; ttlMs: number }): Promise<void> {
    validateOutcomes(outcomes, breaker);
    if (outcomes.length === 0) return;
    const args: (string | number)[] = [breaker.threshold, breaker.ttlMs, KEY_TTL_MS.circuit, this.keys.fleetChangedChannel()];
    for (const o of outcomes) args.push(o.leadingFailures, o.succeeded ? 1 : 0, o.trailingFailures);
    await this.run('recordOutcomes', () =>
      this.commands.aiLbRecordOutcomes(outcomes.length, ...outcomes.map((o) => this.keys.circuit(o.node)), ...args),
    );
  }

  async getCircuits(nodes: readonly NodeId[]): Promise<Record<NodeId, CircuitInfo>> {
    if (nodes.length === 0) return {};
    return this.run('getCircuits', async () => {
      // TIME rides in the same pipeline: half-open is judged by Redis' clock, as in the scripts.
      const pipeline = this.client.pipeline().time();
      for (const node of nodes) pipeline.hmget(this.keys.circuit(node), 'failures', 'openUntil', 'probeUntil');
      const [[, time], ...rows] = throwFirstError(await pipeline.exec()) as [unknown, unknown][];
      const [seconds, micros] = time as [string, string];
      const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      return Object.fromEntries(
        nodes.map((node, i) => {
          const [failures, openUntil, probeUntil] = rows[i][1] as (string | null)[];
          const record =
            failures === null && openUntil === null && probeUntil === null
              ? undefined
              : { failures: Number(failures ?? 0), openUntilMs: Number(openUntil ?? 0), probeUntilMs: Number(probeUntil ?? 0) };
          return [node, circuitInfo(record, now)];
        }),
      );
    });
  }

  async ping(): Promise<void> {
    await this.run('ping', () => this.client.ping());
  }

  /** Never degraded: while Redis is unreachable every call rejects with state_unavailable. */
  health(): StateStoreHealth {
    return NEVER_DEGRADED;
  }

  /** Resolves once every channel a listener asked for is subscribed (tests, startup). */
  async subscriptionsReady(): Promise<void> {
    await this.subscriptions;
  }

  async close(): Promise<void> {
    this.slotOps.flush();
    this.fleetListeners.clear();
    this.slotListeners.clear();
    // A subscriber has nothing to flush, and QUIT would queue behind a pending SUBSCRIBE.
    if (this.subscriber && this.ownsSubscriber) this.subscriber.disconnect();
    if (this.ownsClient) await quit(this.client);
  }

  /** Every Redis call goes through here: fail fast when not connected, one error type. */
  private run<T>(operation: string, call: () => Promise<T>): Promise<T> {
    return runRedis(this.client, this.connectTimeoutMs, operation, call);
  }

  /**
   * A stored record: NodeState plus freshUntilMs and scan. A record written before those
   * existed (plain NodeState) is fresh until its expiry, the index score.
   */
  private parseNode(raw: string, expiresAtMs: number): StoredNode[] {
    try {
      const { freshUntilMs, scan, ...state } = JSON.parse(raw) as NodeState & { freshUntilMs?: number; scan?: number };
      return [{ state, freshUntilMs: freshUntilMs ?? expiresAtMs, scan: scan ?? 0 }];
    } catch {
      // One corrupt record must not hide the whole fleet; it expires by its TTL anyway.
      this.log.warn({ record: raw.slice(0, 60) }, 'skipped an unreadable node record');
      return [];
    }
  }

  /** A replica's shareInflight report; an unreadable one counts nothing (it expires anyway). */
  private parseReport(raw: string): Record<NodeId, number> {
    try {
      const parsed = JSON.parse(raw) as unknown;
      return typeof parsed === 'object' && parsed !== null ? (parsed as Record<NodeId, number>) : {};
    } catch {
      this.log.warn({ record: raw.slice(0, 60) }, 'skipped an unreadable in-flight report');
      return {};
    }
  }

  private parseEngineLoad(raw: string): EngineLoadReading | undefined {
    try {
      return JSON.parse(raw) as EngineLoadReading;
    } catch {
      // A corrupt reading only costs its node the load signal until the next poll.
      this.log.warn({ record: raw.slice(0, 60) }, 'skipped an unreadable engine load');
      return undefined;
    }
  }

  private listen<L>(listeners: Set<L>, listener: L, channel: string): () => void {
    const subscriber = this.subscriberConnection();
    if (listeners.size === 0) {
      this.subscriptions = Promise.all([this.subscriptions, subscriber.subscribe(channel).catch(() => undefined)]);
    }
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /**
   * Created on first use: a connection in subscriber mode cannot run commands. Unlike the
   * command connection it queues while disconnected and resubscribes after a reconnect.
   */
  private subscriberConnection(): Redis {
    if (this.subscriber) return this.subscriber;
    const subscriber =
      this.givenSubscriber ?? this.client.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true });
    if (this.ownsSubscriber) watchConnection(subscriber, 'subscriber', silentLogger);
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.keys.fleetChangedChannel()) dispatch(this.fleetListeners, undefined, this.log);
      else if (channel === this.keys.slotFreedChannel()) dispatch(this.slotListeners, message, this.log);
    });
    this.subscriber = subscriber;
    return subscriber;
  }
}

function defineScripts(client: Redis): ScriptCommands {
  const define = (name: string, lua: string, numberOfKeys?: number) =>
    client.defineCommand(name, numberOfKeys === undefined ? { lua } : { lua, numberOfKeys });
  define('aiLbPutNode', scripts.PUT_NODE, 2);
  define('aiLbMarkNodeUnhealthy', scripts.MARK_NODE_UNHEALTHY, 1);
  define('aiLbListFleet', scripts.LIST_FLEET, 3);
  define('aiLbClaimMonitorLease', scripts.CLAIM_MONITOR_LEASE, 1);
  define('aiLbReleaseMonitorLease', scripts.RELEASE_MONITOR_LEASE, 1);
  define('aiLbBeginScan', scripts.BEGIN_SCAN, 1);
  define('aiLbCompleteScan', scripts.COMPLETE_SCAN, 1);
  define('aiLbRenewLeases', scripts.RENEW_LEASES);
  define('aiLbShareInflight', scripts.SHARE_INFLIGHT);
  define('aiLbRecordOutcomes', scripts.RECORD_OUTCOMES);
  define('aiLbRenewQueueTickets', scripts.RENEW_QUEUE_TICKETS);
  define('aiLbReserveSlots', scripts.RESERVE_SLOTS, 2);
  return client as unknown as ScriptCommands;
}

function dispatch<T>(listeners: Set<(value: T) => void>, value: T, log: Logger): void {
  for (const listener of [...listeners]) {
    try {
      listener(value);
    } catch (error) {
      log.error({ err: error }, 'state-store listener threw');
    }
  }
}

function throwFirstError(results: [Error | null, unknown][] | null): [Error | null, unknown][] {
  if (results === null) throw new Error('pipeline was discarded');
  for (const [error] of results) if (error) throw error;
  return results;
}

/** QUIT lets in-flight replies arrive; a client that is not connected just stops reconnecting. */
async function quit(client: Redis): Promise<void> {
  if (client.status !== 'ready') return client.disconnect();
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
