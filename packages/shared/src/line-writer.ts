import { write, writeSync } from 'node:fs';

/**
 * Log lines to a file descriptor (stderr), written asynchronously and in batches: a line
 * is queued, and what is queued goes out as one buffer `batchMs` after the first line of
 * the batch (or at once when `batchBytes` are queued). One write per batch rather than per
 * line: each write to a pipe wakes its reader (docker, systemd, a shell), and at thousands
 * of requests a second the reader's wake-ups cost the machine more than the lines do.
 *
 * Why not pino's destination (sonic-boom): it appends each line to its pending string and
 * measures that string's UTF-8 length on every write, which flattens it — while the reader
 * lags, each line copies everything queued before it (docs/performance.md, Round 2's second
 * pass). Here a line is encoded into the batch's buffer as it comes: the string dies at
 * once (young, never copied by the garbage collector), and no batch string is joined.
 *
 * A reader that stops reading cannot grow the queue without bound: past `maxQueuedBytes`
 * lines are dropped and counted (the next line that fits says how many). A closed stderr
 * (EPIPE, EBADF) drops lines from then on rather than failing the caller.
 */
export class LineWriter {
  /** Filled buffers waiting for the write in flight. */
  private full: Buffer[] = [];
  /** The buffer lines are encoded into, and how much of it they use. */
  private current: Buffer | null = null;
  private used = 0;
  private queuedBytes = 0;
  /** A written buffer kept for the next batch, so a steady log allocates nothing. */
  private spare: Buffer | null = null;
  private writing = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private droppedLines = 0;

  constructor(
    private readonly fd: number,
    private readonly options: { batchMs?: number; batchBytes?: number; maxQueuedBytes?: number } = {},
  ) {}

  /** Queues one line (with its newline); false when it was dropped. */
  write(line: string): boolean {
    if (this.closed) return false;
    // The length bounds the UTF-8 length from below: a line that surely does not fit is dropped unencoded.
    if (this.queuedBytes + line.length > (this.options.maxQueuedBytes ?? MAX_QUEUED_BYTES)) {
      this.droppedLines++;
      return false;
    }
    if (this.droppedLines > 0) this.queueDropNotice();
    this.reserve(line.length);
    this.encode(line);
    this.schedule();
    return true;
  }

  /** Writes what is queued now, synchronously: at exit, and before a line that must come last. */
  flushSync(): void {
    this.stopTimer();
    if (this.closed || this.queuedBytes === 0) return;
    const bytes = this.takeQueued();
    let offset = 0;
    while (offset < bytes.length) {
      try {
        offset += writeSync(this.fd, bytes, offset, bytes.length - offset);
      } catch (error) {
        // A non-blocking pipe that is full: wait for the reader (this is the exit path).
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        this.closed = true;
        return;
      }
    }
  }

  private queueDropNotice(): void {
    const notice = `{"level":"warn","time":${Date.now()},"msg":"log lines dropped: stderr's reader is not keeping up","dropped":${this.droppedLines}}\n`;
    this.droppedLines = 0;
    this.reserve(notice.length);
    this.encode(notice);
  }

  /** Room in the current buffer for a line of `length` UTF-16 units, so the line is never split across buffers. */
  private reserve(length: number): void {
    // Three bytes per UTF-16 unit bounds the UTF-8 length (a surrogate pair: 4 bytes for 2 units).
    const room = length * 3;
    if (this.current !== null && this.current.length - this.used >= room) return;
    if (this.current !== null && this.used > 0) this.full.push(this.current.subarray(0, this.used));
    const spare = this.spare;
    this.spare = null;
    this.current = spare !== null && spare.length >= room ? spare : Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, room));
    this.used = 0;
  }

  /** Encodes into the room reserve() made. */
  private encode(line: string): void {
    const written = this.current!.write(line, this.used);
    this.used += written;
    this.queuedBytes += written;
  }

  private takeQueued(): Buffer {
    if (this.current !== null && this.used > 0) this.full.push(this.current.subarray(0, this.used));
    const bytes = this.full.length === 1 ? this.full[0] : Buffer.concat(this.full, this.queuedBytes);
    this.full = [];
    this.current = null;
    this.used = 0;
    this.queuedBytes = 0;
    return bytes;
  }

  /** Starts the batch's write when it is due: now when it is large, else when its time is up. */
  private schedule(): void {
    if (this.writing || this.queuedBytes === 0) return;
    if (this.queuedBytes >= (this.options.batchBytes ?? BATCH_BYTES)) {
      this.stopTimer();
      this.writeQueued();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(this.onBatchDue, this.options.batchMs ?? BATCH_MS);
      // Never what keeps a process alive: what is queued at exit is written by flushSync.
      this.timer.unref();
    }
  }

  private readonly onBatchDue = (): void => {
    this.timer = undefined;
    if (!this.writing && this.queuedBytes > 0 && !this.closed) this.writeQueued();
  };

  private stopTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private writeQueued(): void {
    this.writing = true;
    this.writeFrom(this.takeQueued(), 0);
  }

  private writeFrom(bytes: Buffer, offset: number): void {
    write(this.fd, bytes, offset, bytes.length - offset, null, (error, written) => {
      if (error) {
        if (error.code === 'EAGAIN') {
          setTimeout(() => this.writeFrom(bytes, offset), 10);
          return;
        }
        this.closed = true;
        this.writing = false;
        this.full = [];
        this.current = null;
        this.used = 0;
        this.queuedBytes = 0;
        return;
      }
      if (offset + written < bytes.length) return this.writeFrom(bytes, offset + written);
      this.writing = false;
      // The written bytes are done with: their buffer serves the next batch (not one a huge line made).
      const size = bytes.buffer.byteLength;
      if (bytes.byteOffset === 0 && size >= CHUNK_BYTES && size <= MAX_SPARE_BYTES) this.spare = Buffer.from(bytes.buffer, 0, size);
      this.schedule();
    });
  }
}

const BATCH_MS = 25;
const BATCH_BYTES = 64 * 1024;
/** The size of the buffers lines are encoded into (a longer line gets one of its own). */
const CHUNK_BYTES = 64 * 1024;
const MAX_SPARE_BYTES = 4 * CHUNK_BYTES;
const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
