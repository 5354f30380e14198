import { bulk, encodeCall, encodeOpArgs, OP_HEADER_LENGTH, type EncodedOp, type SlotOpKind } from './slot-ops-codec.ts';

interface PendingOp {
  kind: SlotOpKind;
  decode: (reply: unknown) => unknown;
  resolve: (value: never) => void;
  reject: (error: unknown) => void;
}

/** Writes one whole EVALSHA command (RESP text) and answers its reply: one reply per op. */
type SendSlotOps = (command: string) => Promise<unknown[]>;

/**
 * Ops per SLOT_OPS call at most: one call holds Redis for all of its ops (≈ 20–40 µs
 * each), so a burst is cut into calls of this size instead of one long one.
 */
const MAX_OPS_PER_CALL = 64;

/**
 * Collects the acquires and releases one process makes in one event-loop turn and sends
 * them as one SLOT_OPS call. Every socket that became readable in one poll phase
 * runs its callbacks before the loop's check phase, where `setImmediate` flushes: a burst
 * of requests costs one command, one write, one script call and one reply instead of one
 * each, and no op waits past the turn it was made in. Ops run in the order they were
 * added; each op settles alone (a failing op rejects only its own caller). The command
 * is RESP text, built op by op as ops are added (slot-ops-codec.ts).
 */
export class SlotOpBatch {
  private keys = '';
  private args = '';
  private keyCount = 0;
  private argCount = 0;
  private ops: PendingOp[] = [];
  private scheduled = false;
  private readonly head: string;
  private readonly channel: string;

  constructor(
    private readonly send: SendSlotOps,
    scriptSha: string,
    slotFreedChannel: string,
    /** The error an op's own failure (a script error for that op alone) rejects with. */
    private readonly opFailed: (kind: SlotOpKind, message: string) => Error,
  ) {
    this.head = `${bulk('EVALSHA')}${bulk(scriptSha)}`;
    this.channel = bulk(slotFreedChannel);
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
    const command = encodeCall(this.head, this.channel, this.keys, this.keyCount, this.args, ops.length, this.argCount);
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
