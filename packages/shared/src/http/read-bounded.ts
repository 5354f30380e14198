import type { Readable } from 'node:stream';

/**
 * Bytes collected up to a limit. Every body ai-lb reads whole — a client's request, an
 * upstream's answer or error page, a probe's discovery document — goes through this, so a
 * peer that sends forever costs at most `maxBytes` of memory.
 */
export class ByteCollector {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;

  constructor(readonly maxBytes: number) {}

  /** Keeps the chunk; false (and nothing kept) once the total would pass maxBytes. */
  add(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      this.chunks.length = 0;
      return false;
    }
    this.chunks.push(chunk);
    return true;
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
  | { kind: 'complete'; body: Buffer }
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
}

/**
 * Reads a stream whole, bounded in size and time. Plain 'data'/'end' listeners rather than
 * `for await`: the async iterator costs a promise and an iterator step per chunk. Rejects
 * only with the stream's own error.
 */
export function readBounded(stream: Readable, options: ReadBoundedOptions): Promise<BoundedRead> {
  return new Promise((resolve, reject) => {
    const collector = new ByteCollector(options.maxBytes);
    const timer = options.timeoutMs ? setTimeout(() => stop({ kind: 'timeout' }), options.timeoutMs) : undefined;
    const stop = (result: BoundedRead | Error) => {
      clearTimeout(timer);
      stream.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      // A late error after we settled must not be unhandled.
      stream.on('error', ignore);
      if (result instanceof Error) return reject(result);
      if (result.kind === 'too_large' && !options.pauseWhenTooLarge) stream.destroy();
      else if (result.kind !== 'complete') stream.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      if (!collector.add(chunk)) stop({ kind: 'too_large' });
    };
    const onEnd = () => stop({ kind: 'complete', body: collector.take() });
    const onError = (error: Error) => stop(error);
    const onClose = () => stop({ kind: 'closed' });
    stream.on('data', onData).once('end', onEnd).on('error', onError).once('close', onClose);
  });
}

function ignore(): void {}
