import { createHash } from 'node:crypto';
import { compareNodeIds } from '../node-id.ts';
import { Command, type ChainableCommander, type Redis } from 'ioredis';
import { GatewayError } from '../errors.ts';
import { KEY_TTL_MS, redisKeys, type RedisKeys } from '../redis-keys.ts';
import type { CircuitInfo, NodeId, NodeState } from '../types.ts';
import { isPositiveMs, uniqueCandidates, validateAcquireRequest } from './acquire-plan.ts';
import { circuitInfo, validateRelease } from './circuit-record.ts';
import type { RedisSentinelTarget } from '../config/load-config.ts';
import { createRedisConnection, ensureReady, watchConnection, type RedisConnectionOptions } from './redis-connection.ts';
import * as scripts from './redis-scripts.ts';
import { bulk, SlotOpBatch, type EncodedOp } from './slot-op-batch.ts';
import type { AcquireSlotRequest, AcquireSlotResult, LeaseRef, QueueTicketRef, ReleaseSlotRequest, StateStore } from './state-store.ts';

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
  | { client: Redis; subscriber?: Redis; keyPrefix: string; connectTimeoutMs?: number; log?: (line: string) => void };

type ScriptResult = [NodeId | null, number, 'ok' | 'capacity' | 'circuit', number[], number];
/** The defineCommand'ed scripts, as ioredis adds them to the client and its pipelines. */
interface ScriptCommands {
  aiLbPutNode(...args: (string | number)[]): Promise<number>;
  aiLbMarkNodeUnhealthy(...args: (string | number)[]): Promise<number>;
  aiLbListNodeIds(...args: (string | number)[]): Promise<string[]>;
  aiLbGetInflight(...args: (string | number)[]): Promise<number[]>;
  aiLbRenewQueueTickets(...args: (string | number)[]): Promise<number>;
}

/** Leases per RENEW_LEASES call, so one renewal never blocks Redis for long. */
const RENEW_BATCH = 500;

export class RedisStateStore implements StateStore {
  readonly kind = 'redis' as const;
  readonly keys: RedisKeys;
  private readonly client: Redis;
  private readonly commands: ScriptCommands;
  private readonly ownsClient: boolean;
  private readonly connectTimeoutMs: number;
  private readonly log: (line: string) => void;
  private subscriber: Redis | undefined;
  private readonly ownsSubscriber: boolean;
  private readonly givenSubscriber: Redis | undefined;
  private readonly fleetListeners = new Set<() => void>();
  private readonly slotListeners = new Set<(node: NodeId) => void>();
  private subscriptions: Promise<unknown> = Promise.resolve();
  /** acquireSlot and releaseSlot: one SLOT_OPS call per event-loop turn (slot-op-batch.ts). */
  private readonly slotOps: SlotOpBatch;
  /** Per node: its slots key, circuit key and id as RESP bulk strings (see respOf). */
  private readonly nodeResp = new Map<NodeId, NodeResp>();

  constructor(options: RedisStateStoreOptions) {
    this.keys = redisKeys(options.keyPrefix);
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
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
    this.slotOps = new SlotOpBatch(
      (command) => this.run('slot ops', () => this.sendSlotOps(command)),
      SLOT_OPS_SHA,
      this.keys.slotFreedChannel(),
      (kind, message) =>
        new GatewayError(
          'state_unavailable',
          `state store unavailable: ${kind === 'a' ? 'acquireSlot' : 'releaseSlot'} failed: ${message}`,
        ),
    );
  }

  async putNode(state: NodeState, ttlMs: number): Promise<void> {
    if (typeof state?.node !== 'string' || state.node === '') throw new TypeError('putNode: state.node must be a node id');
    if (!isPositiveMs(ttlMs)) throw new TypeError(`putNode: ttlMs must be an integer ≥ 1, got ${String(ttlMs)}`);
    const { node } = state;
    await this.run('putNode', () =>
      this.commands.aiLbPutNode(
        this.keys.node(node),
        this.keys.nodeIndex(),
        JSON.stringify(state),
        ttlMs,
        node,
        this.keys.fleetChangedChannel(),
      ),
    );
  }

  async markNodeUnhealthy(node: NodeId, error: string, checkedAtMs: number): Promise<void> {
    await this.run('markNodeUnhealthy', () =>
      this.commands.aiLbMarkNodeUnhealthy(this.keys.node(node), String(error), checkedAtMs, node, this.keys.fleetChangedChannel()),
    );
  }

  async listNodes(): Promise<NodeState[]> {
    return this.run('listNodes', async () => {
      const ids = await this.commands.aiLbListNodeIds(this.keys.nodeIndex());
      if (ids.length === 0) return [];
      // A record can expire between the two steps: MGET then says nil and it is skipped.
      const records = await this.client.mget(ids.map((id) => this.keys.node(id)));
      return records.flatMap((raw) => (raw === null ? [] : this.parseNode(raw))).sort(byNodeId);
    });
  }

  onFleetChange(listener: () => void): () => void {
    return this.listen(this.fleetListeners, listener, this.keys.fleetChangedChannel());
  }

  acquireSlot(request: AcquireSlotRequest): Promise<AcquireSlotResult> {
    try {
      validateAcquireRequest(request);
    } catch (error) {
      return Promise.reject(error);
    }
    const candidates = uniqueCandidates(request.candidates);
    if (candidates.length === 0) return Promise.resolve({ node: null, probe: false, reason: 'capacity', inflight: {} });
    const { queue, sticky } = request;
    const n = candidates.length;
    let slots = '';
    let circuits = '';
    let nodes = '';
    let caps = '';
    for (const c of candidates) {
      const resp = this.respOf(c.node);
      slots += resp.slots;
      circuits += resp.circuit;
      nodes += resp.node;
      caps += bulk(c.maxconn);
    }
    // KEYS as ACQUIRE_FN reads them: slots…, circuits…, then rotate, sticky, queue pair if used.
    const rotate = request.order === 'rotate' ? bulk(this.keys.roundRobin(request.rotateKey!)) : '';
    const stickyKey = sticky ? bulk(this.keys.sticky(sticky.key)) : '';
    const queueKeys = queue ? bulk(this.keys.queue(queue.key)) + bulk(this.keys.queueExpiry(queue.key)) : '';
    const keys = slots + circuits + rotate + stickyKey + queueKeys;
    const keyCount = 2 * n + (rotate ? 1 : 0) + (sticky ? 1 : 0) + (queue ? 2 : 0);
    // ARGV as ACQUIRE_FN reads it (redis-scripts.ts).
    const args =
      bulk(n) +
      bulk(request.order) +
      bulk(request.leaseId) +
      bulk(request.leaseMs) +
      bulk(request.probeLeaseMs) +
      bulk(sticky?.ttlMs ?? 0) +
      ROTATE_TTL +
      CIRCUIT_TTL +
      nodes +
      caps +
      (queue ? bulk(queue.ticket) + bulk(queue.ttlMs) + bulk(queue.join ? 1 : 0) : NO_QUEUE);
    const op: EncodedOp = { keys, keyCount, args, argCount: 11 + 2 * n };
    return this.slotOps.add('a', op, (reply) => {
      const [node, probe, reason, counts, queueLength] = reply as ScriptResult;
      const inflight: Record<NodeId, number> = {};
      for (let i = 0; i < candidates.length; i++) inflight[candidates[i].node] = counts[i];
      return queue ? { node, probe: probe === 1, reason, inflight, queueLength } : { node, probe: probe === 1, reason, inflight };
    });
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

  releaseSlot(release: ReleaseSlotRequest): Promise<void> {
    try {
      validateRelease(release);
    } catch (error) {
      return Promise.reject(error);
    }
    const resp = this.respOf(release.node);
    // ARGV as RELEASE_FN reads it (redis-scripts.ts).
    const args =
      bulk(release.leaseId) +
      bulk(release.outcome) +
      (release.probe ? ONE : ZERO) +
      bulk(release.breaker.threshold) +
      bulk(release.breaker.ttlMs) +
      CIRCUIT_TTL +
      resp.node;
    return this.slotOps.add('r', { keys: resp.slots + resp.circuit, keyCount: 2, args, argCount: 7 }, ignoreReply);
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
    const counts = await this.run('getInflight', () =>
      this.commands.aiLbGetInflight(nodes.length, ...nodes.map((n) => this.keys.slots(n))),
    );
    return Object.fromEntries(nodes.map((node, i) => [node, counts[i]]));
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

  /** A node's keys and id as RESP, built once per node (the fleet is small; bounded anyway). */
  private respOf(node: NodeId): NodeResp {
    let resp = this.nodeResp.get(node);
    if (resp === undefined) {
      if (this.nodeResp.size >= NODE_RESP_CACHE_MAX) this.nodeResp.clear();
      resp = { slots: bulk(this.keys.slots(node)), circuit: bulk(this.keys.circuit(node)), node: bulk(node) };
      this.nodeResp.set(node, resp);
    }
    return resp;
  }

  /** One SLOT_OPS command as written by SlotOpBatch; loads the script once when Redis lacks it. */
  private async sendSlotOps(command: string): Promise<unknown[]> {
    try {
      return (await this.client.sendCommand(new RespCommand(command))) as unknown[];
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      await this.client.script('LOAD', scripts.SLOT_OPS);
      return (await this.client.sendCommand(new RespCommand(command))) as unknown[];
    }
  }

  /** Every Redis call goes through here: fail fast when not connected, one error type. */
  private async run<T>(operation: string, call: () => Promise<T>): Promise<T> {
    if (this.client.status !== 'ready') await ensureReady(this.client, this.connectTimeoutMs);
    try {
      return await call();
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      const detail = error instanceof Error ? error.message : String(error);
      throw new GatewayError('state_unavailable', `state store unavailable: ${operation} failed: ${detail}`, { cause: error });
    }
  }

  private parseNode(raw: string): NodeState[] {
    try {
      return [JSON.parse(raw) as NodeState];
    } catch {
      // One corrupt record must not hide the whole fleet; it expires by its TTL anyway.
      this.log(`ai-lb: skipped an unreadable node record (${raw.slice(0, 60)})`);
      return [];
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
    if (this.ownsSubscriber) watchConnection(subscriber, 'subscriber', () => undefined);
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
  define('aiLbListNodeIds', scripts.LIST_NODE_IDS, 1);
  define('aiLbRenewLeases', scripts.RENEW_LEASES);
  define('aiLbGetInflight', scripts.GET_INFLIGHT);
  define('aiLbRenewQueueTickets', scripts.RENEW_QUEUE_TICKETS);
  return client as unknown as ScriptCommands;
}

function ignoreReply(): void {}

interface NodeResp {
  slots: string;
  circuit: string;
  node: string;
}

const NODE_RESP_CACHE_MAX = 10_000;
const SLOT_OPS_SHA = createHash('sha1').update(scripts.SLOT_OPS).digest('hex');
const ROTATE_TTL = bulk(KEY_TTL_MS.roundRobin);
const CIRCUIT_TTL = bulk(KEY_TTL_MS.circuit);
const ONE = bulk(1);
const ZERO = bulk(0);
const NO_QUEUE = bulk('') + ZERO + ZERO;

/**
 * An ioredis command whose RESP text is already written (SlotOpBatch): ioredis still
 * queues it, times it out (commandTimeout) and matches its reply, but does no per-argument
 * work. The same pattern as ioredis' own Script commands, which override toWritable too.
 */
class RespCommand extends Command {
  constructor(private readonly text: string) {
    super('evalsha', [], { replyEncoding: 'utf8' });
  }

  override toWritable(): string {
    return this.text;
  }
}

function dispatch<T>(listeners: Set<(value: T) => void>, value: T, log: (line: string) => void): void {
  for (const listener of [...listeners]) {
    try {
      listener(value);
    } catch (error) {
      log(`ai-lb: state-store listener threw: ${String(error)}`);
    }
  }
}

function throwFirstError(results: [Error | null, unknown][] | null): [Error | null, unknown][] {
  if (results === null) throw new Error('pipeline was discarded');
  for (const [error] of results) if (error) throw error;
  return results;
}

function byNodeId(a: NodeState, b: NodeState): number {
  return compareNodeIds(a.node, b.node);
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
