import type { IncomingHttpHeaders } from 'node:http';
import { ByteCollector, readBounded, type BoundedRead, type ByteBudget, type NodeId } from '@ai-lb/shared';
import { util, type Dispatcher } from 'undici';
import { AbortSwitch, closingQuote, usageOf, type AbortSignalLike, type TokenUsage } from '../http/exchange.ts';
import { AttemptError, type AttemptErrorCode } from './attempt-error.ts';

/**
 * One request to one node: the headers it carries, sending it (whole-body or streamed), and
 * reading what comes back within bounds. The attempt's abort switch (timeouts, client gone)
 * cancels it with its reason, so classify-failure sees the code.
 */

/** A W3C traceparent (version 00 layout): anything else from a client is not passed on. */
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * The headers an upstream sees. A short allowlist: hop-by-hop headers, cookies and
 * accept-encoding never go (a compressed event stream could not be checked event by event).
 * The client's own Authorization never goes either: with GATEWAY_API_KEYS it is the
 * gateway's key, and without, a node that wants a key gets its own from NODE_API_KEYS (keys
 * are canonical node ids, as fleet records are).
 */
export function upstreamHeaders(
  client: IncomingHttpHeaders,
  node: NodeId,
  requestId: string,
  nodeApiKeys: ReadonlyMap<NodeId, string>,
  contentType = 'application/json',
  traceparent: string | null = null,
): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': contentType,
    accept: typeof client.accept === 'string' ? client.accept : 'application/json, text/event-stream',
    'x-request-id': requestId,
  };
  if (typeof client['user-agent'] === 'string') headers['user-agent'] = client['user-agent'];
  // Anthropic clients name the API version and betas they speak: a native node needs them.
  if (typeof client['anthropic-version'] === 'string') headers['anthropic-version'] = client['anthropic-version'];
  if (typeof client['anthropic-beta'] === 'string') headers['anthropic-beta'] = client['anthropic-beta'];
  // W3C trace context: the attempt's span when the gateway traces, else the client's own, passed on.
  const parent = traceparent ?? client.traceparent;
  if (typeof parent === 'string' && TRACEPARENT.test(parent)) headers.traceparent = parent;
  const nodeKey = nodeApiKeys.get(node);
  if (nodeKey !== undefined) headers.authorization = `Bearer ${nodeKey}`;
  return headers;
}

/** Sends one attempt's request for a streamed answer; the abort switch bounds and cancels it. */
export function sendUpstream(
  pool: Dispatcher,
  request: { path: string; body: Buffer; headers: Record<string, string> },
  abort: AttemptAbort,
): Promise<Dispatcher.ResponseData> {
  return pool.request({
    method: 'POST',
    path: request.path,
    headers: request.headers,
    body: request.body,
    // Not an AbortSignal, but what undici accepts as one (see AttemptAbort).
    signal: abort.signal as unknown as AbortSignal,
  });
}

/**
 * A response body whole, bounded by maxBytes and the process's budget (the body is destroyed
 * past either). Destroyed without an error (undici's aborts carry a reason, which rejects
 * instead) is an error here.
 */
export async function readBodyLimited(
  body: Dispatcher.ResponseData['body'],
  maxBytes: number,
  budget: ByteBudget | null,
): Promise<Exclude<BoundedRead, { kind: 'timeout' | 'closed' }>> {
  const read = await readBounded(body, { maxBytes, budget: budget ?? undefined });
  if (read.kind === 'closed' || read.kind === 'timeout') throw new Error('the upstream body was closed before it ended');
  return read;
}

export interface WholeResponse {
  statusCode: number;
  headers: AnswerHeaders;
  /** The whole body, or null when it grew past the limit onHead returned. */
  body: Buffer | null;
  /** Gives the body's bytes back to the budget: call once it is no longer held. */
  release: () => void;
}

export interface FetchWholeOptions {
  path: string;
  body: Buffer;
  headers: Record<string, string>;
  /**
   * Called once with the response head. Returns the body's size limit, or an error that
   * fails the attempt without reading the body (the upstream request is then aborted).
   */
  onHead: (statusCode: number, headers: AnswerHeaders) => number | Error;
  /** BUFFER_BUDGET_MB: past it the request is cancelled with AI_LB_OVER_BUDGET. */
  budget: ByteBudget | null;
}

/**
 * One upstream request whose answer is read whole (stream:false): a bare undici dispatch
 * handler collecting the body. `pool.request()` builds an AsyncResource, a Readable per
 * response and a promise around it, and the body is then read back out of that stream;
 * this skips all of it.
 */
export function fetchWhole(pool: Dispatcher, options: FetchWholeOptions, abort: AttemptAbort): Promise<WholeResponse> {
  return new Promise((resolve, reject) => new WholeHandler(pool, options, abort, resolve, reject));
}

class WholeHandler implements Dispatcher.DispatchHandler {
  private abortUpstream: ((error?: Error) => void) | null = null;
  private statusCode = 0;
  private headers: AnswerHeaders = {};
  private collector: ByteCollector | null = null;
  private overLimit = false;
  private settled = false;
  private readonly onHead: FetchWholeOptions['onHead'];
  private readonly budget: ByteBudget | null;
  private readonly onAbort = () => this.cancel(this.abort.reason!);

  constructor(
    pool: Dispatcher,
    options: FetchWholeOptions,
    private readonly abort: AttemptAbort,
    private readonly resolve: (response: WholeResponse) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    this.onHead = options.onHead;
    this.budget = options.budget;
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
    this.headers = answerHeaders(rawHeaders);
    const verdict = this.onHead(statusCode, this.headers);
    if (verdict instanceof Error) this.cancel(verdict);
    else this.collector = new ByteCollector(verdict, this.budget);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.settled || this.overLimit || this.collector === null) return true;
    const added = this.collector.add(chunk);
    if (added === 'too_large') {
      // Not an LLM answer: stop reading and free the connection; the caller decides what it means.
      this.overLimit = true;
      this.finish(null);
      this.abortUpstream?.(new Error('response body over its size limit'));
    } else if (added === 'over_budget') {
      this.cancel(new AttemptError('AI_LB_OVER_BUDGET', 'the gateway holds BUFFER_BUDGET_MB of bodies already'));
    }
    return true;
  }

  onComplete(): void {
    this.finish(this.collector?.take() ?? Buffer.alloc(0));
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
    const collector = this.collector;
    this.resolve({ statusCode: this.statusCode, headers: this.headers, body, release: () => collector?.release() });
  }

  private settle(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.collector?.release();
    this.abort.removeEventListener('abort', this.onAbort);
    this.reject(error);
  }
}

/** The headers of an answer read whole that the gateway reads; the others are never decoded. */
export interface AnswerHeaders {
  'content-type'?: string;
  'retry-after'?: string;
}

/** The first value of each header AnswerHeaders names, decoded as undici's parseHeaders decodes it. */
export function answerHeaders(rawHeaders: Buffer[]): AnswerHeaders {
  let contentType: string | undefined;
  let retryAfter: string | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const raw = rawHeaders[i];
    // Only a name as long as one of the two can be one of them.
    if (raw.length !== CONTENT_TYPE_LENGTH && raw.length !== RETRY_AFTER_LENGTH) continue;
    const name = util.headerNameToString(raw);
    if (name === 'content-type') contentType ??= rawHeaders[i + 1].toString('latin1');
    else if (name === 'retry-after') retryAfter ??= rawHeaders[i + 1].toString('latin1');
  }
  return { 'content-type': contentType, 'retry-after': retryAfter };
}

const CONTENT_TYPE_LENGTH = 'content-type'.length;
const RETRY_AFTER_LENGTH = 'retry-after'.length;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const ERROR_KEY = Buffer.from('"error"');

/**
 * A 200 non-stream answer is passed on only when it looks like an answer: a JSON object,
 * and not an error reported with status 200 (some servers do that). The check is
 * structural, not a parse: the first and last non-blank bytes must be braces (catches
 * HTML, plain text and truncated bodies), and only a body whose first key is "error" is
 * parsed to be sure. Parsing every answer would cost CPU per request on large embedding
 * responses, for nothing a client would not notice itself. Returns the failure, or null.
 */
export function checkJsonAnswer(body: Buffer): AttemptError | null {
  const first = skipBlank(body, 0, 1);
  const last = skipBlank(body, body.length - 1, -1);
  if (first === -1 || body[first] !== OPEN_BRACE || body[last] !== CLOSE_BRACE) {
    return new AttemptError('AI_LB_BAD_RESPONSE', 'the upstream answered 200 with a body that is not a JSON object');
  }
  const key = skipBlank(body, first + 1, 1);
  if (key === -1 || !body.subarray(key, key + ERROR_KEY.length).equals(ERROR_KEY)) return null;
  let error: unknown;
  try {
    error = (JSON.parse(body.toString('utf8')) as { error?: unknown }).error;
  } catch {
    return new AttemptError('AI_LB_BAD_RESPONSE', 'the upstream answered 200 with a body that is not valid JSON');
  }
  if (error === null || error === undefined) return null;
  const message = typeof error === 'string' ? error : (error as { message?: unknown }).message;
  return new AttemptError(
    'AI_LB_ERROR_EVENT',
    `the upstream answered 200 with an error: ${typeof message === 'string' ? message.slice(0, 500) : 'no message'}`,
  );
}

/** Index of the first byte from `from` (walking by `step`) that is not JSON whitespace, or -1. */
function skipBlank(body: Buffer, from: number, step: 1 | -1): number {
  for (let i = from; i >= 0 && i < body.length; i += step) {
    const byte = body[i];
    if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) return i;
  }
  return -1;
}

/**
 * The abort switch of one upstream attempt: fires when the client leaves, or when the
 * current phase's timer (head, first token, idle) runs out. The abort reason is an
 * AttemptError whose code says which, and undici rejects/destroys with that very reason,
 * so classify-failure sees the code.
 *
 * It is its own abort signal (an AbortSwitch, see there why): undici takes any object with
 * `aborted`, `reason` and add/removeEventListener as a request's `signal`.
 */
export class AttemptAbort extends AbortSwitch {
  declare reason: AttemptError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerMs = 0;
  private timeoutCode: AttemptErrorCode = 'AI_LB_HEADERS_TIMEOUT';
  private timeoutWhat = '';
  private readonly onTimeout = () => this.abort(new AttemptError(this.timeoutCode, `${this.timeoutWhat} ${this.timerMs} ms`));
  /** The client's side ended it: the client left, or the gateway is shutting down (its reason says which). */
  private readonly onClientAbort = () =>
    this.abort(
      this.clientSignal.reason instanceof AttemptError
        ? this.clientSignal.reason
        : new AttemptError('AI_LB_CLIENT_ABORT', 'the client closed the connection'),
    );

  constructor(private readonly clientSignal: AbortSignalLike) {
    super();
    if (clientSignal.aborted) this.onClientAbort();
    else clientSignal.addEventListener('abort', this.onClientAbort, { once: true });
  }

  /** What undici is given as `signal` (see the class comment). */
  get signal(): AttemptAbort {
    return this;
  }

  /**
   * Starts (or replaces) the phase timer. The next phase usually has the same duration
   * (head, then body, both REQUEST_TIMEOUT_SECS): the running timer is then restarted
   * rather than replaced — one timer per attempt instead of one per phase. `what` opens the
   * error's message, "<what> <ms> ms", which is built only when the timer fires.
   */
  arm(ms: number, code: AttemptErrorCode, what: string): void {
    this.timeoutCode = code;
    this.timeoutWhat = what;
    if (this.timer !== undefined && this.timerMs === ms) {
      this.timer.refresh();
      return;
    }
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerMs = ms;
    this.timer = setTimeout(this.onTimeout, ms);
  }

  /** Restarts the current phase's timer: cheap, called on every chunk of a stream. */
  refresh(): void {
    this.timer?.refresh();
  }

  disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  override abort(reason: AttemptError): void {
    this.disarm();
    super.abort(reason);
  }

  dispose(): void {
    this.disarm();
    this.clientSignal.removeEventListener('abort', this.onClientAbort);
  }
}

const USAGE_KEY = Buffer.from('"usage"');
const EVAL_COUNT_KEY = Buffer.from('"eval_count"');
/** An answer's usage object is small; a longer one is not read (it is not a usage object). */
const MAX_USAGE_CHARS = 4096;

/**
 * The token counts of a whole JSON answer, without parsing the answer: the last `"usage"`
 * key's object (OpenAI, Anthropic, Responses; nested details included) is cut out and
 * parsed alone — an answer's usage is a small object near its end. An Ollama answer has no
 * `usage`: its counts are top-level fields after its text. Null when there are none.
 */
export function usageOfAnswer(body: Buffer): TokenUsage | null {
  const key = body.lastIndexOf(USAGE_KEY);
  if (key === -1) return ollamaUsageOfAnswer(body);
  const open = objectAfterKey(body, key + USAGE_KEY.length);
  if (open === -1) return ollamaUsageOfAnswer(body); // "usage": null, or the word inside a string
  const close = objectEnd(body, open);
  if (close === -1) return null;
  return usageOfJson(body.toString('utf8', open, close + 1));
}

/** Where the object after a key's end starts (`: {`), or -1 when the value is not an object. */
function objectAfterKey(body: Buffer, at: number): number {
  let colon = false;
  for (let i = at; i < body.length && i - at < 64; i++) {
    const byte = body[i];
    if (byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09) continue;
    if (byte === 0x3a && !colon) colon = true;
    else return byte === 0x7b && colon ? i : -1;
  }
  return -1;
}

/**
 * The `}` that closes the object opening at `open`, or -1 within MAX_USAGE_CHARS. One pass:
 * strings (keys included) are stepped over, so a brace inside one does not count, and the
 * object is parsed once — trying prefixes until one parses would throw (and build a stack
 * trace) per nested object, and a hostile answer full of braces in a string could make it
 * thousands of parses.
 */
function objectEnd(body: Buffer, open: number): number {
  const end = Math.min(body.length, open + MAX_USAGE_CHARS + 1);
  let depth = 0;
  for (let i = open; i < end; i++) {
    const byte = body[i];
    if (byte === 0x22) {
      i = closingQuote(body, i);
      if (i === -1) return -1;
    } else if (byte === 0x7b) depth++;
    else if (byte === 0x7d && --depth === 0) return i;
  }
  return -1;
}

function usageOfJson(text: string): TokenUsage | null {
  try {
    return usageOf({ usage: JSON.parse(text) as unknown });
  } catch {
    return null;
  }
}

/** Ollama's `prompt_eval_count` / `eval_count`: read from the answer's tail, where Ollama puts them. */
function ollamaUsageOfAnswer(body: Buffer): TokenUsage | null {
  const key = body.lastIndexOf(EVAL_COUNT_KEY);
  if (key === -1) return null;
  // latin1: byte offsets are string offsets, and the keys and digits are ASCII.
  const completion = /^"eval_count"\s*:\s*(\d+)/.exec(body.toString('latin1', key, key + 64));
  if (completion === null) return null;
  const prompt = /"prompt_eval_count"\s*:\s*(\d+)/.exec(body.toString('latin1', Math.max(0, key - 512), key));
  return { promptTokens: prompt === null ? 0 : Number(prompt[1]), completionTokens: Number(completion[1]) };
}
