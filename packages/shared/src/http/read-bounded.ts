import type { Readable } from 'node:stream';

/**
 * A process-wide allowance of bytes held in memory by bodies read whole (BUFFER_BUDGET_MB):
 * many large answers or uploads at once get a clear refusal instead of growing the process
 * until the OS kills it. Taken chunk by chunk as bytes arrive, given back when the body is
 * no longer held.
 */
export class ByteBudget {
  private used = 0;

  constructor(readonly limitBytes: number) {}

  take(bytes: number): boolean {
    if (this.used + bytes > this.limitBytes) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  get inUse(): number {
    return this.used;
  }
}

export type AddResult = 'ok' | 'too_large' | 'over_budget';

/**
 * Bytes collected up to a limit. Every body ai-lb reads whole — a client's request, an
 * upstream's answer or error page, a probe's discovery document — goes through this, so a
 * peer that sends forever costs at most `maxBytes` of memory; with a budget, all of them
 * together cost at most the budget.
 */
export class ByteCollector {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private taken = 0;

  constructor(
    readonly maxBytes: number,
    private readonly budget: ByteBudget | null = null,
  ) {}

  /** Keeps the chunk; once the total would pass maxBytes or the budget, nothing more is kept. */
  add(chunk: Buffer): AddResult {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      this.drop();
      return 'too_large';
    }
    if (this.budget !== null) {
      if (!this.budget.take(chunk.length)) {
        this.drop();
        return 'over_budget';
      }
      this.taken += chunk.length;
    }
    this.chunks.push(chunk);
    return 'ok';
  }

  /** Gives the budgeted bytes back: call once the body is no longer held (idempotent). */
  release(): void {
    this.budget?.give(this.taken);
    this.taken = 0;
  }

  private drop(): void {
    this.chunks.length = 0;
    this.release();
  }

  get size(): number {
    return this.bytes;
  }

  /** The bytes so far as one Buffer (no copy for a single chunk). */
  take(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, Math.min(this.bytes, this.maxBytes));
  }
}

export type BoundedRead =
  /** `release` gives the body's bytes back to the budget (a no-op without one). */
  | { kind: 'complete'; body: Buffer; release: () => void }
  /** The process-wide budget had no room for it: reading stopped as for too_large. */
  | { kind: 'over_budget' }
  /** Passed maxBytes: reading stopped (the stream is destroyed, or paused with `pauseWhenTooLarge`). */
  | { kind: 'too_large' }
  /** Did not end within timeoutMs: reading stopped, the stream paused. */
  | { kind: 'timeout' }
  /** Closed before it ended, without an error. */
  | { kind: 'closed' };

export interface ReadBoundedOptions {
  maxBytes: number;
  /** 0 or absent: no time bound. */
  timeoutMs?: number;
  /**
   * Pause instead of destroying a stream that grew too large: a server's request stream, so
   * an error answer can still go out on the same socket (closed after it).
   */
  pauseWhenTooLarge?: boolean;
  budget?: ByteBudget;
}

/**
 * Reads a stream whole, bounded in size and time. Plain 'data'/'end' listeners rather than
 * `for await`: the async iterator costs a promise and an iterator step per chunk. Rejects
 * only with the stream's own error.
 */
export function readBounded(stream: Readable, options: ReadBoundedOptions): Promise<BoundedRead> {
  return new Promise((resolve, reject) => {
    const collector = new ByteCollector(options.maxBytes, options.budget ?? null);
    const timer = options.timeoutMs ? setTimeout(() => stop({ kind: 'timeout' }), options.timeoutMs) : undefined;
    const stop = (result: BoundedRead | Error) => {
      clearTimeout(timer);
      stream.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      // A late error after we settled must not be unhandled.
      stream.on('error', ignore);
      if (result instanceof Error || result.kind !== 'complete') collector.release();
      if (result instanceof Error) return reject(result);
      if ((result.kind === 'too_large' || result.kind === 'over_budget') && !options.pauseWhenTooLarge) stream.destroy();
      else if (result.kind !== 'complete') stream.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      const added = collector.add(chunk);
      if (added !== 'ok') stop({ kind: added });
    };
    const onEnd = () => stop({ kind: 'complete', body: collector.take(), release: () => collector.release() });
    const onError = (error: Error) => stop(error);
    const onClose = () => stop({ kind: 'closed' });
    // `on`, not `once`, for 'end' and 'close': stop() removes every listener at the first
    // event, and `once` would wrap each in garbage of its own.
    stream.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

function ignore(): void {}
