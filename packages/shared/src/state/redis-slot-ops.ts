import { createHash } from 'node:crypto';
import { Command, type Redis } from 'ioredis';
import { GatewayError } from '../errors.ts';
import { KEY_TTL_MS, type RedisKeys } from '../redis-keys.ts';
import type { NodeId } from '../types.ts';
import { ensureReady } from './redis-connection.ts';
import { SLOT_OPS } from './redis-scripts.ts';
import { uniqueCandidates, validateAcquireRequest, validateRelease } from './slot-rules.ts';
import {
  ACQUIRE_ARG_COUNT_FIXED,
  ACQUIRE_ARG_COUNT_PER_CANDIDATE,
  CALL_ARG_COUNT,
  OP_HEADER_LENGTH,
  OP_KIND,
  RELEASE_ARG_COUNT,
  type SlotOpKind,
} from './slot-ops-codec.ts';
import type { AcquireSlotRequest, AcquireSlotResult, ReleaseSlotRequest, SlotCandidate } from './state-store.ts';

/**
 * The Redis store's hot path: acquireSlot and releaseSlot, encoded as SLOT_OPS ops in the
 * layout slot-ops-codec.ts writes down, batched per event-loop turn into one EVALSHA.
 */
export class RedisSlotOps {
  private readonly batch: SlotOpBatch;
  /** Per node: its slots key, circuit key and id as RESP bulk strings (see respOf). */
  private readonly nodeResp = new Map<NodeId, NodeResp>();

  constructor(
    private readonly client: Redis,
    private readonly keys: RedisKeys,
    connectTimeoutMs: number,
  ) {
    this.batch = new SlotOpBatch(
      (command) => runRedis(client, connectTimeoutMs, 'slot ops', () => this.send(command)),
      SLOT_OPS_SHA,
      { slotFreed: keys.slotFreedChannel(), fleetChanged: keys.fleetChangedChannel() },
      (kind, message) =>
        new GatewayError(
          'state_unavailable',
          `state store unavailable: ${kind === OP_KIND.acquire ? 'acquireSlot' : 'releaseSlot'} failed: ${message}`,
        ),
    );
  }

  readonly acquireSlot = (request: AcquireSlotRequest): Promise<AcquireSlotResult> => {
    try {
      validateAcquireRequest(request);
    } catch (error) {
      return Promise.reject(error);
    }
    const candidates = uniqueCandidates(request.candidates);
    if (candidates.length === 0) return Promise.resolve({ node: null, probe: false, reason: 'capacity', inflight: {} });
    const op = encodeAcquire(request, candidates, this.respOf, this.keys);
    return this.batch.add(OP_KIND.acquire, op, (reply) => decodeAcquireReply(reply, candidates));
  };

  readonly releaseSlot = (release: ReleaseSlotRequest): Promise<void> => {
    try {
      validateRelease(release);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.batch.add(OP_KIND.release, encodeRelease(release, this.respOf(release.node)), ignoreReply);
  };

  /** Sends what is queued now (the store's close()). */
  flush(): void {
    this.batch.flush();
  }

  /** A node's keys and id as RESP, built once per node (the fleet is small; bounded anyway). */
  private readonly respOf = (node: NodeId): NodeResp => {
    let resp = this.nodeResp.get(node);
    if (resp === undefined) {
      if (this.nodeResp.size >= NODE_RESP_CACHE_MAX) this.nodeResp.clear();
      resp = { slots: bulk(this.keys.slots(node)), circuit: bulk(this.keys.circuit(node)), node: bulk(node) };
      this.nodeResp.set(node, resp);
    }
    return resp;
  };

  /** One SLOT_OPS command as written by SlotOpBatch; loads the script once when Redis lacks it. */
  private async send(command: string): Promise<unknown[]> {
    try {
      return (await this.client.sendCommand(new RespCommand(command))) as unknown[];
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      await this.client.script('LOAD', SLOT_OPS);
      return (await this.client.sendCommand(new RespCommand(command))) as unknown[];
    }
  }
}

/**
 * Every Redis call of the store goes through here: fail fast when not connected (within
 * connectTimeoutMs), and one error type for every failure, state_unavailable.
 */
export async function runRedis<T>(client: Redis, connectTimeoutMs: number, operation: string, call: () => Promise<T>): Promise<T> {
  if (client.status !== 'ready') await ensureReady(client, connectTimeoutMs);
  try {
    return await call();
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    const detail = error instanceof Error ? error.message : String(error);
    throw new GatewayError('state_unavailable', `state store unavailable: ${operation} failed: ${detail}`, { cause: error });
  }
}

function ignoreReply(): void {}

const NODE_RESP_CACHE_MAX = 10_000;
const SLOT_OPS_SHA = createHash('sha1').update(SLOT_OPS).digest('hex');

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

/** A RESP bulk string: `$<bytes>\r\n<value>\r\n`. */
export function bulk(value: string | number): string {
  const text = typeof value === 'string' ? value : String(value);
  return `$${typeof value === 'string' ? Buffer.byteLength(text) : text.length}\r\n${text}\r\n`;
}

/** One op's keys and args, each already a RESP bulk string. */
export interface EncodedOp {
  keys: string;
  keyCount: number;
  args: string;
  argCount: number;
}

/** A node's keys and id as RESP bulk strings (the store builds them once per node). */
export interface NodeResp {
  slots: string;
  circuit: string;
  node: string;
}

const ROTATE_TTL = bulk(KEY_TTL_MS.roundRobin);
const CIRCUIT_TTL = bulk(KEY_TTL_MS.circuit);
const ONE = bulk(1);
const ZERO = bulk(0);
/** ticket, ticketTtlMs, join of a request without a queue. */
const NO_QUEUE = bulk('') + ZERO + ZERO;
/** The per-candidate ordering hints, in ACQUIRE_ARGS order. */
const HINTS = ['extraLoad', 'slots', 'tier'] as const;

/** An acquire op for already de-duplicated candidates, in ACQUIRE_KEYS / ACQUIRE_ARGS order. */
export function encodeAcquire(
  request: AcquireSlotRequest,
  candidates: readonly SlotCandidate[],
  respOf: (node: NodeId) => NodeResp,
  keys: RedisKeys,
): EncodedOp {
  const { queue, sticky } = request;
  const n = candidates.length;
  let slots = '';
  let circuits = '';
  let nodes = '';
  let caps = '';
  let hints = '';
  for (const c of candidates) {
    const resp = respOf(c.node);
    slots += resp.slots;
    circuits += resp.circuit;
    nodes += resp.node;
    caps += bulk(c.maxconn);
  }
  for (const hint of HINTS) for (const c of candidates) hints += c[hint] === undefined ? ZERO : bulk(c[hint]);
  let optional = '';
  let optionalCount = 0;
  if (request.order === 'rotate') {
    optional += bulk(keys.roundRobin(request.rotateKey!));
    optionalCount++;
  }
  if (sticky) {
    optional += bulk(keys.sticky(sticky.key));
    optionalCount++;
  }
  if (queue) {
    optional += bulk(keys.queue(queue.key)) + bulk(keys.queueExpiry(queue.key));
    optionalCount += 2;
  }
  const args =
    bulk(n) +
    bulk(request.order) +
    bulk(request.leaseId) +
    bulk(request.leaseMs) +
    bulk(request.probeLeaseMs) +
    (sticky ? bulk(sticky.ttlMs) : ZERO) +
    ROTATE_TTL +
    CIRCUIT_TTL +
    nodes +
    caps +
    (queue ? bulk(queue.ticket) + bulk(queue.ttlMs) + (queue.join ? ONE : ZERO) : NO_QUEUE) +
    hints;
  return {
    keys: slots + circuits + optional,
    keyCount: 2 * n + optionalCount,
    args,
    argCount: ACQUIRE_ARG_COUNT_FIXED + ACQUIRE_ARG_COUNT_PER_CANDIDATE * n,
  };
}

/** A release op, in RELEASE_KEYS / RELEASE_ARGS order. */
export function encodeRelease(release: ReleaseSlotRequest, node: NodeResp): EncodedOp {
  const args =
    bulk(release.leaseId) +
    bulk(release.outcome) +
    (release.probe ? ONE : ZERO) +
    bulk(release.breaker.threshold) +
    bulk(release.breaker.ttlMs) +
    CIRCUIT_TTL +
    node.node;
  return { keys: node.slots + node.circuit, keyCount: 2, args, argCount: RELEASE_ARG_COUNT };
}

const KIND_RESP: Record<SlotOpKind, string> = { a: bulk(OP_KIND.acquire), r: bulk(OP_KIND.release) };

/** An op's header and args (OP_HEADER order), and how many ARGV entries that is. */
export function encodeOpArgs(kind: SlotOpKind, op: EncodedOp): string {
  return `${KIND_RESP[kind]}${bulk(op.keyCount)}${bulk(op.argCount)}${op.args}`;
}

/**
 * A whole call: EVALSHA sha numkeys key… opCount slotFreedChannel fleetChangedChannel (op
 * header, op args)… `head` is the EVALSHA and sha bulk strings, `channels` the two
 * channels' bulk strings.
 */
export function encodeCall(
  head: string,
  channels: string,
  keys: string,
  keyCount: number,
  ops: string,
  opCount: number,
  opArgCount: number,
): string {
  return `*${3 + keyCount + CALL_ARG_COUNT + opArgCount}\r\n${head}${bulk(keyCount)}${keys}${bulk(opCount)}${channels}${ops}`;
}

/** The acquire op's reply: { node | false, probe 1/0, reason, inflight per candidate }. */
type AcquireReply = [NodeId | null, number, AcquireSlotResult['reason'], number[]];

export function decodeAcquireReply(reply: unknown, candidates: readonly SlotCandidate[]): AcquireSlotResult {
  const [node, probe, reason, counts] = reply as AcquireReply;
  const inflight: Record<NodeId, number> = {};
  for (let i = 0; i < candidates.length; i++) inflight[candidates[i].node] = counts[i];
  return { node, probe: probe === 1, reason, inflight };
}

interface PendingOp {
  kind: SlotOpKind;
  decode: (reply: unknown) => unknown;
  resolve: (value: never) => void;
  reject: (error: unknown) => void;
}

/** Writes one whole EVALSHA command (RESP text) and answers its reply: one reply per op. */
type SendSlotOps = (command: string) => Promise<unknown[]>;

/**
 * Ops per SLOT_OPS call at most: one call holds Redis for all of its ops, so a burst is cut into calls of this size instead of one long one.
 */
const MAX_OPS_PER_CALL = 64;

/**
 * Collects the acquires and releases one process makes in one event-loop turn and sends
 * them as one SLOT_OPS call. Every socket that became readable in one poll phase
 * runs its callbacks before the loop's check phase, where `setImmediate` flushes: a burst
 * of requests costs one command, one write, one script call and one reply instead of one
 * each, and no op waits past the turn it was made in. Ops run in the order they were
 * added; each op settles alone (a failing op rejects only its own caller). The command
 * is RESP text, built op by op as ops are added.
 */
export class SlotOpBatch {
  private keys = '';
  private args = '';
  private keyCount = 0;
  private argCount = 0;
  private ops: PendingOp[] = [];
  private scheduled = false;
  private readonly head: string;
  private readonly channels: string;

  constructor(
    private readonly send: SendSlotOps,
    scriptSha: string,
    channels: { slotFreed: string; fleetChanged: string },
    /** The error an op's own failure (a script error for that op alone) rejects with. */
    private readonly opFailed: (kind: SlotOpKind, message: string) => Error,
  ) {
    this.head = `${bulk('EVALSHA')}${bulk(scriptSha)}`;
    this.channels = bulk(channels.slotFreed) + bulk(channels.fleetChanged);
  }

  /** Queues one op; resolves with `decode(its reply)`. */
  add<T>(kind: SlotOpKind, op: EncodedOp, decode: (reply: unknown) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.keys += op.keys;
      this.keyCount += op.keyCount;
      this.args += encodeOpArgs(kind, op);
      this.argCount += OP_HEADER_LENGTH + op.argCount;
      this.ops.push({ kind, decode, resolve: resolve as (value: never) => void, reject });
      if (this.ops.length >= MAX_OPS_PER_CALL) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flushScheduled);
      }
    });
  }

  /** Sends what is queued now (close() calls it so nothing queued is dropped). */
  flush(): void {
    const { ops } = this;
    if (ops.length === 0) return;
    const command = encodeCall(this.head, this.channels, this.keys, this.keyCount, this.args, ops.length, this.argCount);
    this.keys = '';
    this.args = '';
    this.keyCount = 0;
    this.argCount = 0;
    this.ops = [];
    this.send(command).then(
      (replies) => {
        for (let i = 0; i < ops.length; i++) this.settle(ops[i], replies[i]);
      },
      (error: unknown) => {
        for (const op of ops) op.reject(error);
      },
    );
  }

  private readonly flushScheduled = (): void => {
    this.scheduled = false;
    this.flush();
  };

  private settle(op: PendingOp, reply: unknown): void {
    if (Array.isArray(reply) && reply.length === 2 && reply[0] === '!') {
      return op.reject(this.opFailed(op.kind, String(reply[1])));
    }
    try {
      op.resolve(op.decode(reply) as never);
    } catch (error) {
      op.reject(error);
    }
  }
}
