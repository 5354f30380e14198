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
 * A line can also be queued as an item and its encoder (writeLater): it is written into the
 * batch's buffer when the batch goes out, with no string built at all. The access log is
 * one such line per request: its lines are encoded a batch at a time, off the requests'
 * path, with the encoder's code and data warm (docs/performance.md).
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
  /**
   * Lines queued by writeLater, not encoded yet: encoder, item and the time it was queued, in
   * threes (one flat array: no object per line). They count in `queuedBytes` as
   * LATER_LINE_BYTES each until they are encoded.
   */
  private later: unknown[] = [];

  constructor(
    private readonly fd: number,
    private readonly options: { batchMs?: number; batchBytes?: number; maxQueuedBytes?: number } = {},
  ) {}

  /** Queues one line (with its newline); false when it was dropped. */
  write(line: string): boolean {
    // The length bounds the UTF-8 length from below: a line that surely does not fit is dropped unencoded.
    if (!this.admit(line.length)) return false;
    // Lines go out in the order they came: those queued for later are encoded first.
    if (this.later.length > 0) this.encodeLater();
    this.reserve(line.length * 3);
    this.encode(line);
    this.schedule();
    return true;
  }

  /**
   * Queues the line `encoder` writes for `item`, encoded when its batch is written (or at
   * flushSync); false when it was dropped. The line's time is now, when it is queued. An
   * encoder that throws loses its own line only.
   */
  writeLater<T>(encoder: LineEncoder<T>, item: T): boolean {
    if (!this.admit(LATER_LINE_BYTES)) return false;
    this.later.push(encoder, item, Date.now());
    this.queuedBytes += LATER_LINE_BYTES;
    // While a slow reader holds the batch back, items are encoded a batch at a time rather than kept.
    if (this.writing && this.later.length >= (3 * (this.options.batchBytes ?? BATCH_BYTES)) / LATER_LINE_BYTES) this.encodeLater();
    this.schedule();
    return true;
  }

  /**
   * Whether a line of about `bytes` fits under the bound; one that does not is counted as
   * dropped. The first line that fits after drops is preceded by the notice of how many.
   */
  private admit(bytes: number): boolean {
    if (this.closed) return false;
    if (this.queuedBytes + bytes > (this.options.maxQueuedBytes ?? MAX_QUEUED_BYTES)) {
      this.droppedLines++;
      return false;
    }
    if (this.droppedLines > 0) {
      if (this.later.length > 0) this.encodeLater();
      this.queueDropNotice();
    }
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
    this.reserve(notice.length * 3);
    this.encode(notice);
  }

  /** Encodes the lines queued by writeLater, in order, into the batch's buffers. */
  private encodeLater(): void {
    const later = this.later;
    this.later = [];
    this.queuedBytes -= (later.length / 3) * LATER_LINE_BYTES;
    for (let i = 0; i < later.length; i += 3) {
      const encoder = later[i] as LineEncoder<unknown>;
      const item = later[i + 1];
      try {
        const room = encoder.maxBytes(item);
        this.reserve(room);
        const end = encoder.encode(this.current!, this.used, item, later[i + 2] as number);
        // Past its room the line may have been cut at the buffer's end (stores past a typed array's end are dropped).
        if (!(end >= this.used && end - this.used <= room)) continue;
        this.queuedBytes += end - this.used;
        this.used = end;
      } catch {
        // Nothing of the line counts: `used` moves only past a line that was written whole.
      }
    }
  }

  /**
   * Room in the current buffer for `room` bytes, so a line is never split across buffers.
   * A string's caller asks for three bytes per UTF-16 unit, which bounds its UTF-8 length (a
   * surrogate pair: 4 bytes for 2 units).
   */
  private reserve(room: number): void {
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
    if (this.later.length > 0) this.encodeLater();
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
/** What a line queued by writeLater counts for until it is encoded (an access line is ≈ 450 bytes). */
const LATER_LINE_BYTES = 512;

/** Writes one line of an item straight into the writer's buffer (LineWriter.writeLater). */
export interface LineEncoder<T> {
  /** At most how many bytes encode() writes for `item`: that much room is made for it. */
  maxBytes(item: T): number;
  /** Writes the line of `item` (with its newline), queued at `timeMs` (epoch ms), into `buf` from `at`; returns where it ends. */
  encode(buf: Buffer, at: number, item: T, timeMs: number): number;
}
