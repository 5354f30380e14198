import { write, writeSync } from 'node:fs';

/**
 * Log lines to a file descriptor (stderr), written asynchronously and in batches: a line
 * is queued, and what is queued goes out as one buffer `batchMs` after the first line of
 * the batch (or at once when `batchChars` are queued). One write per batch rather than per
 * line: each write to a pipe wakes its reader (docker, systemd, a shell), and at thousands
 * of requests a second the reader's wake-ups cost the machine more than the lines do.
 *
 * Why not pino's destination (sonic-boom): it appends each line to its pending string and
 * measures that string's UTF-8 length on every write, which flattens it — while the reader
 * lags, each line copies everything queued before it (docs/performance.md, Round 2's second
 * pass). Here a line costs an array push; the batch is joined and encoded once.
 *
 * A reader that stops reading cannot grow the queue without bound: past `maxQueuedChars`
 * lines are dropped and counted (the next line that fits says how many). A closed stderr
 * (EPIPE, EBADF) drops lines from then on rather than failing the caller.
 */
export class LineWriter {
  private queued: string[] = [];
  private queuedChars = 0;
  private writing = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private droppedLines = 0;

  constructor(
    private readonly fd: number,
    private readonly options: { batchMs?: number; batchChars?: number; maxQueuedChars?: number } = {},
  ) {}

  /** Queues one line (with its newline); false when it was dropped. */
  write(line: string): boolean {
    if (this.closed) return false;
    if (this.queuedChars + line.length > (this.options.maxQueuedChars ?? MAX_QUEUED_CHARS)) {
      this.droppedLines++;
      return false;
    }
    if (this.droppedLines > 0) this.queueDropNotice();
    this.queued.push(line);
    this.queuedChars += line.length;
    this.schedule();
    return true;
  }

  /** Writes what is queued now, synchronously: at exit, and before a line that must come last. */
  flushSync(): void {
    this.stopTimer();
    if (this.closed || this.queued.length === 0) return;
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
    this.queued.push(notice);
    this.queuedChars += notice.length;
  }

  private takeQueued(): Buffer {
    const bytes = Buffer.from(this.queued.length === 1 ? this.queued[0] : this.queued.join(''));
    this.queued = [];
    this.queuedChars = 0;
    return bytes;
  }

  /** Starts the batch's write when it is due: now when it is large, else when its time is up. */
  private schedule(): void {
    if (this.writing || this.queued.length === 0) return;
    if (this.queuedChars >= (this.options.batchChars ?? BATCH_CHARS)) {
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
    if (!this.writing && this.queued.length > 0 && !this.closed) this.writeQueued();
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
        this.queued = [];
        this.queuedChars = 0;
        return;
      }
      if (offset + written < bytes.length) return this.writeFrom(bytes, offset + written);
      this.writing = false;
      this.schedule();
    });
  }
}

const BATCH_MS = 25;
const BATCH_CHARS = 64 * 1024;
const MAX_QUEUED_CHARS = 16 * 1024 * 1024;
