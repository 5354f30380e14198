import type { IncomingHttpHeaders } from 'node:http';
import { util, type Dispatcher } from 'undici';
import type { AttemptAbort } from './attempt-abort.ts';

export interface WholeResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The whole body, or null when it grew past the limit onHead returned. */
  body: Buffer | null;
}

export interface FetchWholeOptions {
  path: string;
  body: Buffer;
  headers: Record<string, string>;
  /**
   * Called once with the response head. Returns the body's size limit, or an error that
   * fails the attempt without reading the body (the upstream request is then aborted).
   */
  onHead: (statusCode: number, headers: IncomingHttpHeaders) => number | Error;
}

/**
 * One upstream request whose answer is read whole (stream:false): a bare undici dispatch
 * handler collecting the body into chunks. `pool.request()` builds an AsyncResource, a
 * Readable per response and a promise around it, and the body is then read back out of
 * that stream; this skips all of it (issue 6: the node floor pipes with a handler too).
 * The attempt's abort switch cancels the request (timeouts, client gone), with its reason.
 */
export function fetchWhole(pool: Dispatcher, options: FetchWholeOptions, abort: AttemptAbort): Promise<WholeResponse> {
  return new Promise((resolve, reject) => new WholeHandler(pool, options, abort, resolve, reject));
}

class WholeHandler implements Dispatcher.DispatchHandler {
  private abortUpstream: ((error?: Error) => void) | null = null;
  private statusCode = 0;
  private headers: IncomingHttpHeaders = {};
  private limit = 0;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private overLimit = false;
  private settled = false;
  private readonly onHead: FetchWholeOptions['onHead'];
  private readonly onAbort = () => this.cancel(this.abort.reason!);

  constructor(
    pool: Dispatcher,
    options: FetchWholeOptions,
    private readonly abort: AttemptAbort,
    private readonly resolve: (response: WholeResponse) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    this.onHead = options.onHead;
    if (abort.aborted) {
      this.settle(abort.reason);
      return;
    }
    abort.addEventListener('abort', this.onAbort);
    pool.dispatch({ method: 'POST', path: options.path, headers: options.headers, body: options.body }, this);
  }

  onConnect(abortUpstream: (error?: Error) => void): void {
    // undici may call this again when it retries the request on a fresh connection.
    if (this.settled) return abortUpstream(new Error('request no longer wanted'));
    this.abortUpstream = abortUpstream;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200 || this.settled) return true; // 1xx: the real head follows
    this.statusCode = statusCode;
    this.headers = util.parseHeaders(rawHeaders);
    const verdict = this.onHead(statusCode, this.headers);
    if (verdict instanceof Error) this.cancel(verdict);
    else this.limit = verdict;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.settled || this.overLimit) return true;
    this.size += chunk.length;
    if (this.size > this.limit) {
      // Not an LLM answer: stop reading and free the connection; the caller decides what it means.
      this.overLimit = true;
      this.chunks.length = 0;
      this.finish(null);
      this.abortUpstream?.(new Error('response body over its size limit'));
      return true;
    }
    this.chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    const { chunks, size } = this;
    this.finish(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
  }

  onError(error: Error): void {
    this.settle(error);
  }

  private cancel(reason: Error): void {
    this.settle(reason);
    this.abortUpstream?.(reason);
  }

  private finish(body: Buffer | null): void {
    if (this.settled) return;
    this.settled = true;
    this.abort.removeEventListener('abort', this.onAbort);
    this.resolve({ statusCode: this.statusCode, headers: this.headers, body });
  }

  private settle(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.abort.removeEventListener('abort', this.onAbort);
    this.reject(error);
  }
}
