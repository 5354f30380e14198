import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { GATEWAY_MARK_HEADER, GatewayError, readBounded, type BoundedRead, type ByteBudget, type Logger } from '@ai-lb/shared';
import type { RequestTrace } from '../observability/tracing.ts';
import { asGatewayError, ERROR_RENDERERS, type ErrorFormat } from './error-formats.ts';

/** Visible ASCII only, no spaces, at most 128: safe to log, echo and forward as a header. */
const SANE_TOKEN = /^[\x21-\x7e]{1,128}$/;

/**
 * Deeper JSON than this is refused. The body goes upstream as the client sent it, and the
 * servers behind ai-lb are mostly Python, whose json module gives up near 1,000 levels with
 * an error that would count against the node: a hostile body must cost only its own request.
 */
const MAX_JSON_DEPTH = 1000;

/** More of a response than this still waiting for the client starts its write bound. */
const UNFLUSHED_BOUND_BYTES = 64 * 1024;

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/**
 * The token counts an answer or stream event reports, in each API's shape: OpenAI's `usage`
 * ({prompt_tokens, completion_tokens}); Anthropic's and the Responses API's ({input_tokens,
 * output_tokens}), also where their streams nest it (`message_start`'s message,
 * `response.completed`'s response); Ollama's top-level `prompt_eval_count` / `eval_count`.
 * `previous` is what the stream reported before: an Anthropic `message_delta` counts only
 * output tokens, its input tokens came with `message_start`. Null when the record says nothing.
 */
export function usageOf(record: Record<string, unknown> | undefined, previous: TokenUsage | null = null): TokenUsage | null {
  if (record === undefined) return null;
  const usage =
    record.usage ?? (record.message as { usage?: unknown } | null)?.usage ?? (record.response as { usage?: unknown } | null)?.usage;
  if (usage !== null && typeof usage === 'object') {
    const u = usage as Record<string, unknown>;
    const completion = count(u.completion_tokens) ?? count(u.output_tokens);
    if (completion === null) return null;
    const prompt = count(u.prompt_tokens) ?? count(u.input_tokens) ?? previous?.promptTokens ?? null;
    return prompt === null ? null : { promptTokens: prompt, completionTokens: completion };
  }
  const completion = count(record.eval_count);
  if (completion === null) return null;
  return { promptTokens: count(record.prompt_eval_count) ?? 0, completionTokens: completion };
}

function count(value: unknown): number | null {
  return typeof value === 'number' && value >= 0 && Number.isFinite(value) ? value : null;
}

/** What every exchange of one gateway shares. */
export interface ExchangeLimits {
  /** BUFFER_BUDGET_MB, shared by every body held whole. */
  budget: ByteBudget;
  clientWriteTimeoutMs: number;
}

/** A JSON request body: parsed, and the bytes as the client sent them. */
export interface JsonBody {
  value: Record<string, unknown>;
  raw: Buffer;
}

/**
 * One request and its response: everything a request knows travels here, from the router
 * through the handler to the end of the response — its id, the client's abort signal, what
 * the answer said (model, node, attempts, stream outcome). Every response goes out through
 * it, so every one carries the gateway mark and the request id, and every error is rendered
 * in the endpoint's format in one place (`fail`).
 */
export class Exchange {
  readonly startedAt = performance.now();
  /** The client's x-request-id when it is a sane token, else a fresh one; forwarded upstream. */
  readonly requestId: string;
  /** Fires when the client goes away before its response ended. */
  readonly clientGone = new AbortSwitch();
  /** The concrete model the request was resolved to. */
  model: string | null = null;
  /** The node that answered (after failover, the last one). */
  node: string | null = null;
  /** Upstream attempts made so far. */
  attempts = 0;
  /** The answer is an event stream whose head went out. */
  eventStream = false;
  /** A 200 stream that ended with an error event: not an answer, whatever its status says. */
  streamBroken = false;
  /**
   * performance.now() when the answer's first content went to the client: a stream's first
   * data event, or a whole answer (its time to first token is its latency).
   */
  firstTokenAt: number | null = null;
  /** Data events relayed to the client (a stream's output tokens when the upstream reports no usage). */
  contentEvents = 0;
  /** Token counts as the upstream reported them (`usage`), when it did. */
  usage: TokenUsage | null = null;
  /** performance.now() when the last attempt's request went upstream, and when its answer ended. */
  upstreamStartAt: number | null = null;
  upstreamEndAt: number | null = null;
  /** The body's `model` as the client sent it (a sentinel, an alias), when it was a string: the access log's. */
  requestedModel: string | null = null;
  /** Time spent waiting in the queue for a free slot (QUEUE_TIMEOUT_MS), all attempts together; null: it never waited. */
  queueWaitMs: number | null = null;
  /** The answer's finish reason, read only while the request is traced (`trace` set). */
  finishReason: string | null = null;
  /** This request's trace when OTEL_EXPORTER_OTLP_ENDPOINT is set, else null (observability/tracing.ts). */
  trace: RequestTrace | null = null;
  private params: URLSearchParams | undefined;

  private closers: (() => void)[] | null = null;
  /** CORS headers for a browser client whose Origin is allowed (CORS_ORIGINS); null otherwise. */
  cors: OutgoingHttpHeaders | null = null;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly path: string,
    private readonly search: string,
    readonly errorFormat: ErrorFormat,
    /** The inference surface (metrics label) when this is a routed request; null for admin routes. */
    readonly surface: string | null,
    readonly limits: ExchangeLimits,
  ) {
    this.requestId = pickRequestId(req.headers['x-request-id']);
  }

  /** Runs `release` when the response is over (ended or cut): what this request holds until then. */
  holdUntilClosed(release: () => void): void {
    if (this.closers === null) this.closers = [release];
    else this.closers.push(release);
  }

  /** The response is over: the router calls this from the response's 'close'. */
  closed(): void {
    const closers = this.closers;
    this.closers = null;
    if (closers !== null) for (const release of closers) release();
  }

  /**
   * One query parameter, or null when absent. Given twice (`?node=a&node=b`) is a 400 naming
   * it, never silently "one of them".
   */
  queryParam(name: string): string | null {
    if (this.search === '') return null;
    this.params ??= new URLSearchParams(this.search);
    const values = this.params.getAll(name);
    if (values.length > 1) throw invalidParam(name, `query parameter '${name}' must be given once`);
    return values.length === 0 ? null : values[0];
  }

  /**
   * Refuses parameters that are a known one spelled otherwise (`?NODE=`, `?node[]=`): they
   * would be silently ignored, and the caller would believe the request was routed as asked.
   * Other parameters (a client's own, e.g. `api-version`) are left alone.
   */
  rejectMisspelledParams(known: readonly string[]): void {
    if (this.search === '') return;
    this.params ??= new URLSearchParams(this.search);
    for (const name of this.params.keys()) {
      if (known.includes(name)) continue;
      const plain = name.toLowerCase().replace(/\[.*\]$/, '');
      if (known.includes(plain)) throw invalidParam(plain, `query parameter '${name.slice(0, 40)}': use '${plain}=' exactly once`);
    }
  }

  /** The body read whole (as readBody) as a JSON object (jsonObjectOf). */
  async readJson(maxBytes: number, timeoutMs: number): Promise<JsonBody> {
    // One async frame: readBody's steps are repeated here rather than awaited, since every
    // chat request comes this way and each pending async function costs its own garbage.
    const reading = this.startRead(maxBytes, timeoutMs);
    let read: BoundedRead;
    try {
      read = await reading;
    } catch (error) {
      throw unreadable(error);
    }
    return jsonObjectOf(this.bodyOf(read, maxBytes, timeoutMs));
  }

  /**
   * The body once, bounded by MAX_BODY_BYTES (a declared Content-Length over it is refused
   * before a byte is read), by BUFFER_BUDGET_MB (held until the exchange closes) and by
   * time: a body that does not arrive whole within timeoutMs is a 408 and the connection is
   * closed (node's own requestTimeout would hold it 300 s).
   */
  async readBody(maxBytes: number, timeoutMs: number): Promise<Buffer> {
    const reading = this.startRead(maxBytes, timeoutMs);
    let read: BoundedRead;
    try {
      read = await reading;
    } catch (error) {
      throw unreadable(error);
    }
    return this.bodyOf(read, maxBytes, timeoutMs);
  }

  /** Throws a GatewayError at once when Content-Length is over `maxBytes`; else the read under way. */
  private startRead(maxBytes: number, timeoutMs: number): Promise<BoundedRead> {
    const declared = Number(this.req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) throw bodyTooLarge(maxBytes);
    return readBounded(this.req, { maxBytes, timeoutMs, pauseWhenTooLarge: true, budget: this.limits.budget });
  }

  /** A complete read's bytes (held against the budget until the exchange closes), or the error for the client. */
  private bodyOf(read: BoundedRead, maxBytes: number, timeoutMs: number): Buffer {
    if (read.kind === 'complete') {
      this.holdUntilClosed(read.release);
      return read.body;
    }
    if (read.kind === 'too_large') throw bodyTooLarge(maxBytes);
    if (read.kind === 'over_budget') throw budgetExhausted();
    if (read.kind === 'timeout') {
      throw new GatewayError('request_timeout', `the request body did not arrive within ${timeoutMs} ms`, {
        headers: { connection: 'close' },
      });
    }
    throw new GatewayError('invalid_request', 'the client closed the connection while sending the body');
  }

  /** A whole response in one writeHead: with no setHeader before it, node builds the head straight from this object. */
  send(status: number, headers: OutgoingHttpHeaders, body: string | Buffer): void {
    this.res.writeHead(status, {
      [GATEWAY_MARK_HEADER]: '1',
      'x-request-id': this.requestId,
      ...this.cors,
      ...headers,
      'content-length': typeof body === 'string' ? Buffer.byteLength(body) : body.length,
    });
    this.res.end(body);
    // A large body a client does not read would stay in memory as long as the client likes.
    if (this.res.writableLength > UNFLUSHED_BOUND_BYTES) this.boundClientWrite();
  }

  /**
   * A client that stops reading (backpressure) gets CLIENT_WRITE_TIMEOUT_SECS before its
   * connection is cut. Returns the timer; clear it once the client drained.
   */
  boundClientWrite(): NodeJS.Timeout {
    const timer = setTimeout(() => this.res.destroy(), this.limits.clientWriteTimeoutMs);
    timer.unref();
    this.holdUntilClosed(() => clearTimeout(timer));
    return timer;
  }

  sendJson(status: number, value: unknown, headers: OutgoingHttpHeaders = {}): void {
    this.send(status, { 'content-type': 'application/json; charset=utf-8', ...headers }, JSON.stringify(value));
  }

  /** The head of a response whose body follows as it comes (streams). */
  startStream(status: number, headers: OutgoingHttpHeaders): void {
    this.eventStream = true;
    this.res.writeHead(status, { [GATEWAY_MARK_HEADER]: '1', 'x-request-id': this.requestId, ...this.cors, ...headers });
  }

  /** Ends a stream whose head went out with one error event in this endpoint's format. */
  endStreamWithError(message: string, code: string): void {
    this.streamBroken = true;
    if (this.res.destroyed || this.res.writableEnded) return;
    this.res.end(ERROR_RENDERERS[this.errorFormat].streamEvent(message, code));
  }

  /**
   * Anything thrown while answering: a GatewayError goes out as it says, in this endpoint's
   * format; anything else is a bug of ours, a 500 whose cause is logged, never sent. Once a
   * head went out an envelope is too late: a stream gets its error event, anything else is
   * cut, so the client sees a failure rather than a truncated success.
   */
  fail(error: unknown, log: Logger): void {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'AI_LB_CLIENT_ABORT') return void this.res.destroy();
    const known = code === 'AI_LB_SHUTDOWN' ? shuttingDown() : asGatewayError(error);
    if (known === null) {
      log.error({ err: error, requestId: this.requestId, method: this.req.method, path: this.path }, 'unhandled error');
    }
    const gatewayError = known ?? new GatewayError('internal_error', 'internal error in the ai-lb gateway', { cause: error });
    if (this.res.headersSent) {
      if (this.eventStream && known !== null) this.endStreamWithError(gatewayError.message, gatewayError.code);
      else this.res.destroy();
      return;
    }
    const renderer = ERROR_RENDERERS[this.errorFormat];
    const routed: OutgoingHttpHeaders = {};
    if (this.surface !== null) {
      routed['x-attempts'] = String(this.attempts);
      if (this.model !== null) routed['x-selected-model'] = headerSafe(this.model);
    }
    // Added to `routed`, not spread into a new object: an overload answers a flood of errors,
    // and no spread-then-new-property belongs on the hot path (docs/architecture.md).
    Object.assign(routed, gatewayError.headers);
    routed['content-type'] = renderer.contentType;
    this.send(gatewayError.status, routed, renderer.body(gatewayError));
  }
}

/**
 * The request's own x-request-id when it is a sane token, else a fresh one. Anything with
 * CR/LF, spaces or control characters, or longer than 128, is replaced, never echoed: it
 * would end up in upstream requests and log lines.
 */
export function pickRequestId(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && SANE_TOKEN.test(value) ? value : newRequestId();
}

/**
 * A fresh request id in a UUID's shape (what clients and log tools expect): a random v4
 * UUID per process with its last 12 hex digits a counter. Unique across replicas by the
 * 74 random bits, and cheaper than a random draw and a 16-byte serialisation per request.
 */
const REQUEST_ID_PREFIX = randomUUID().slice(0, 24);
let requestIdCounter = Math.floor(Math.random() * 2 ** 32);
function newRequestId(): string {
  requestIdCounter = (requestIdCounter + 1) % 2 ** 48;
  return REQUEST_ID_PREFIX + requestIdCounter.toString(16).padStart(12, '0');
}

/**
 * A value as a response header may carry it. Model ids come from upstream servers: printable
 * ASCII goes as is; anything else (a non-ASCII id such as "uni-模型") is percent-encoded
 * (RFC 3986, as encodeURIComponent does), because node refuses characters outside Latin-1
 * and clients differ on how they decode the rest.
 */
export function headerSafe(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}

/**
 * In the bytes of JSON text, the index of the quote that closes the string whose opening
 * quote is at `open`, or -1 when none does: the next quote not escaped (an even run of
 * backslashes before it). Found with indexOf (memchr) rather than byte by byte, because a
 * request body is nearly all string, its messages. Bytes, not decoded text: no UTF-8 byte of
 * a multi-byte character is a quote or a backslash.
 */
export function closingQuote(bytes: Buffer, open: number): number {
  let quote = bytes.indexOf(0x22, open + 1);
  while (quote !== -1) {
    let backslashes = 0;
    while (bytes[quote - 1 - backslashes] === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote;
    quote = bytes.indexOf(0x22, quote + 1);
  }
  return -1;
}

function invalidParam(name: string, message: string): GatewayError {
  return new GatewayError('invalid_request', message, { param: name });
}

export function shuttingDown(): GatewayError {
  return new GatewayError('shutting_down', 'the gateway is shutting down; retry on another replica', { headers: { 'retry-after': '1' } });
}

export function budgetExhausted(): GatewayError {
  return new GatewayError(
    'memory_budget_exhausted',
    'the gateway is holding BUFFER_BUDGET_MB of request and answer bodies; retry shortly',
    {
      headers: { 'retry-after': '1' },
    },
  );
}

/**
 * A request body as a JSON object, or the 400 that says why it is not one. Bytes that are
 * not UTF-8 are refused: decoding would silently forward U+FFFD the client never wrote.
 */
function jsonObjectOf(raw: Buffer): JsonBody {
  if (raw.length === 0) throw new GatewayError('invalid_json', 'the request body is empty: a JSON object is required');
  if (!isUtf8(raw)) throw new GatewayError('invalid_json', 'the request body is not valid UTF-8');
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new GatewayError('invalid_json', `the request body is not valid JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new GatewayError('invalid_json', 'the request body must be a JSON object');
  }
  if (nestsDeeper(value, MAX_JSON_DEPTH)) {
    throw new GatewayError('invalid_json', `the request body is nested too deeply (over ${MAX_JSON_DEPTH} levels)`);
  }
  return { value: value as Record<string, unknown>, raw };
}

/**
 * Whether a parsed JSON value nests deeper than `levels` (the value itself is the first).
 * Walked on the parsed value, not on the bytes: V8 parses any depth without recursing, and
 * the walk touches each object and array once where a scan of the bytes pays a search per
 * string and per escaped quote — and a coding agent's body is mostly strings of code. The
 * recursion is at most `levels` deep.
 */
export function nestsDeeper(node: object, levels: number): boolean {
  if (levels === 0) return true;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const item: unknown = node[i];
      if (typeof item === 'object' && item !== null && nestsDeeper(item, levels - 1)) return true;
    }
    return false;
  }
  for (const key in node) {
    const item = (node as Record<string, unknown>)[key];
    if (typeof item === 'object' && item !== null && nestsDeeper(item, levels - 1)) return true;
  }
  return false;
}

/** The request stream failed while its body was read. */
function unreadable(cause: unknown): GatewayError {
  return new GatewayError('invalid_request', 'the request body could not be read', { cause });
}

function bodyTooLarge(maxBytes: number): GatewayError {
  return new GatewayError('body_too_large', `the request body exceeds MAX_BODY_BYTES (${maxBytes} bytes)`, {
    headers: { connection: 'close' },
  });
}

type AbortListener = () => void;

/**
 * What the gateway's code (and undici, as a request `signal`) reads of an abort signal.
 * A real AbortSignal is one; so is an AbortSwitch.
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: AbortListener, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: AbortListener): void;
}

/**
 * A one-shot abort signal and its trigger in one small object: a request has two (the
 * client's and the attempt's), and AbortController's AbortSignal with EventTarget listeners
 * costs several times more per request (docs/performance.md). A request has one to three
 * listeners, held in an array; every listener is called once, as with `{ once: true }`.
 */
export class AbortSwitch implements AbortSignalLike {
  aborted = false;
  reason: unknown = undefined;
  private listeners: AbortListener[] = [];

  addEventListener(type: 'abort', listener: AbortListener): void {
    if (type === 'abort' && !this.aborted) this.listeners.push(listener);
  }

  removeEventListener(type: 'abort', listener: AbortListener): void {
    if (type !== 'abort') return;
    const index = this.listeners.indexOf(listener);
    if (index !== -1) this.listeners.splice(index, 1);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = [];
    // One listener that throws must not keep the others (e.g. undici's cancel) from running.
    let failure: unknown = null;
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== null) throw failure;
  }
}
