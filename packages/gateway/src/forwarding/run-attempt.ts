import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { ByteBudget, Clock, Config, Logger, NodeId, NodeState } from '@ai-lb/shared';
import type { Lease, SlotLeases } from '../capacity/slot-leases.ts';
import { classifyError, classifyStatus, parseRetryAfterMs, type FailureReason } from '../failover/classify-failure.ts';
import type { AttemptResult } from '../failover/with-failover.ts';
import { budgetExhausted, headerSafe, shuttingDown, type Exchange } from '../http/exchange.ts';
import type { GatewayMetrics } from '../metrics.ts';
import { finishReasonOfAnswer } from '../observability/tracing.ts';
import type { FleetCache, UpstreamPools } from '../routing/fleet-cache.ts';
import { AttemptError } from './attempt-error.ts';
import type { StreamResumer } from './continue-stream.ts';
import { pipeStream } from './pipe-stream.ts';
import { redactSecrets } from './redact-secrets.ts';
import { errorBodyIn, normalizeUpstreamError } from './upstream-error-body.ts';
import type { StreamShape, StreamTransform } from './stream-shapes.ts';
import {
  type AnswerHeaders,
  AttemptAbort,
  checkJsonAnswer,
  fetchWhole,
  type FetchWholeOptions,
  readBodyLimited,
  sendUpstream,
  upstreamHeaders,
  usageOfAnswer,
} from './upstream-request.ts';

/** One request as it goes through attempts: parsed once, planned once per kind of node. */
export interface InferenceRequest {
  exchange: Exchange;
  model: string;
  stream: boolean;
  /** What goes to a node and how its answer is read (routes/inference-route.ts planner). */
  planFor(node: NodeState): UpstreamPlan;
  /** STREAM_RESUME is on for this stream: a break after content is left to it to continue. */
  resume?: StreamResumer;
}

/** One node's request: where, what bytes, and how to read the answer. */
export interface UpstreamPlan {
  /**
   * The model id this node is sent (what x-selected-model says when it answers): the
   * request's model, except for a MODEL_ALIASES alias, whose nodes each get the id they list.
   */
  model: string;
  path: string;
  /** The client's bytes with `model` set to what this node calls the model, or the translated body. */
  body: Buffer;
  contentType: string;
  /** How this node's stream looks. */
  shape: StreamShape;
  /** 'binary': relayed as it comes (audio); 'json': read whole and checked. */
  answers: 'json' | 'binary';
  /** When the node speaks another API than the client: how its answers become the client's. */
  translate: {
    answer(upstream: unknown): unknown;
    stream(): StreamTransform;
    contentType: string;
  } | null;
  /** Sees every parsed answer, and the stream events that are not plain content (pipe-stream.ts). */
  onRecord?: (record: Record<string, unknown>) => void;
}

/** What an attempt uses, and nothing more. */
export interface AttemptDeps {
  pools: Pick<UpstreamPools, 'get'>;
  fleet: Pick<FleetCache, 'node' | 'recordLatency'>;
  leases: Pick<SlotLeases, 'release'>;
  metrics: Pick<GatewayMetrics, 'inflight' | 'noteAttemptFailure' | 'droppedSseEvents' | 'streamTtfb'>;
  log: Logger;
  clock: Clock;
  timeouts: Pick<Config, 'requestTimeoutMs' | 'firstTokenTimeoutMs' | 'streamIdleTimeoutMs'>;
  /** NODE_API_KEYS. */
  nodeApiKeys: ReadonlyMap<NodeId, string>;
  /** Every configured key: cut out of upstream error bodies before anyone sees them. */
  secrets: readonly string[];
  /** BUFFER_BUDGET_MB: answers read whole count against it until the client has them. */
  budget: ByteBudget;
}

/**
 * Bigger non-stream answers than this are not an LLM answer (the largest real ones are
 * embedding batches of a few MiB); refusing them guards the gateway's memory.
 */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
const MAX_ERROR_BODY_BYTES = 1024 * 1024;

/**
 * One attempt on one leased node: send, then answer the client (JSON, stream, or an
 * upstream caller-fault passed through) or report a failure. The slot is released exactly
 * once: before returning on failure (so the next attempt never overlaps it), after the
 * response has ended on success.
 */
export async function runAttempt(
  deps: AttemptDeps,
  request: InferenceRequest,
  lease: Lease,
  attemptNumber: number,
): Promise<AttemptResult> {
  const { exchange } = request;
  const node = deps.fleet.node(lease.node);
  const abort = new AttemptAbort(exchange.clientGone);
  const attempt: Attempt = { deps, request, lease, abort, plan: null as unknown as UpstreamPlan };
  exchange.attempts = attemptNumber;
  const gauge = deps.metrics.inflight.labels({ node: lease.node });
  gauge.value++;
  let upstream: Dispatcher.ResponseData | undefined;
  try {
    if (node === undefined) throw new AttemptError('AI_LB_BAD_RESPONSE', `node ${lease.node} left the fleet`);
    const plan = request.planFor(node);
    attempt.plan = plan;
    const { requestTimeoutMs } = deps.timeouts;
    abort.arm(requestTimeoutMs, 'AI_LB_HEADERS_TIMEOUT', 'no response head within');
    const traceparent = exchange.trace === null ? null : exchange.trace.startAttempt(lease.node, attemptNumber);
    const headers = upstreamHeaders(exchange.req.headers, lease.node, exchange.requestId, deps.nodeApiKeys, plan.contentType, traceparent);
    const sentAt = performance.now();
    exchange.upstreamStartAt = sentAt;
    const pool = deps.pools.get(node);
    if (!request.stream && plan.answers === 'json') {
      // Awaited here rather than in a function of its own: every chat request comes this
      // way, and each pending async function is garbage of its own.
      const whole = await fetchWhole(pool, wholeRequest(attempt, headers, sentAt), abort);
      abort.disarm();
      exchange.holdUntilClosed(whole.release);
      const { statusCode, body } = whole;
      if (statusCode < 200 || statusCode > 299) {
        return await answerErrorBody(attempt, { statusCode, headers: whole.headers, received: body ?? Buffer.alloc(0) });
      }
      if (body === null) throw answerTooLarge();
      return sendJsonAnswer(attempt, statusCode, header(whole.headers['content-type']) ?? 'application/json', body);
    }
    upstream = await sendUpstream(pool, { path: plan.path, body: plan.body, headers }, abort);
    deps.fleet.recordLatency(lease.node, performance.now() - sentAt);
    if (upstream.statusCode < 200 || upstream.statusCode > 299) {
      return await answerErrorStatus(attempt, upstream);
    }
    if (plan.answers === 'binary') return await answerBinary(attempt, upstream);
    if (isStreamOf(plan.shape, upstream.headers['content-type'])) return await answerStream(attempt, upstream);
    return await answerJson(attempt, upstream);
  } catch (error) {
    // Whatever is left of the upstream answer is not wanted: free the connection.
    if (upstream !== undefined && !upstream.body.destroyed) upstream.body.destroy();
    const failure = classifyError(error);
    await deps.leases.release(lease, failure.outcome);
    if (failure.reason === 'client_abort') return { kind: 'aborted' };
    // The gateway's own memory is full: the client is told to come back, no node is blamed.
    if (failure.reason === 'over_budget') throw budgetExhausted();
    if (failure.reason === 'shutdown') throw shuttingDown();
    const message = `${lease.node}: ${describe(error)}`;
    noteFailure(attempt, failure.reason, message);
    return { kind: 'failed', failure, message, retryAfterMs: null };
  } finally {
    abort.dispose();
    gauge.value--;
    exchange.trace?.endAttempt();
  }
}

/** One attempt of one request on one node: what every step below needs, built once. */
interface Attempt {
  deps: AttemptDeps;
  request: InferenceRequest;
  lease: Lease;
  abort: AttemptAbort;
  plan: UpstreamPlan;
}

/**
 * stream:false: the answer is read whole before anything is sent (so a body that breaks
 * half-way can still fail over), through a bare dispatch handler (fetchWhole); its head
 * sets the body's limit and time bound.
 */
function wholeRequest(attempt: Attempt, headers: Record<string, string>, sentAt: number): FetchWholeOptions {
  const { deps, lease, abort, plan } = attempt;
  const { requestTimeoutMs } = deps.timeouts;
  return {
    path: plan.path,
    body: plan.body,
    headers,
    budget: deps.budget,
    onHead: (status, responseHeaders) => {
      deps.fleet.recordLatency(lease.node, performance.now() - sentAt);
      if (status < 200 || status > 299) {
        abort.arm(requestTimeoutMs, 'AI_LB_BODY_TIMEOUT', 'error body not read within');
        return MAX_ERROR_BODY_BYTES;
      }
      if (isEventStream(responseHeaders['content-type'])) {
        return new AttemptError('AI_LB_BAD_RESPONSE', 'the upstream answered stream:false with an event stream');
      }
      abort.arm(requestTimeoutMs, 'AI_LB_BODY_TIMEOUT', 'response body not complete within');
      return MAX_RESPONSE_BYTES;
    },
  };
}

function answerTooLarge(): AttemptError {
  return new AttemptError('AI_LB_ANSWER_TOO_LARGE', `the upstream answer exceeded ${MAX_RESPONSE_BYTES} bytes`);
}

/** An answer read whole: its bytes, held (against the budget) until the client has them. */
async function readWhole(attempt: Attempt, upstream: Dispatcher.ResponseData, maxBytes: number): Promise<Buffer | null> {
  const read = await readBodyLimited(upstream.body, maxBytes, attempt.deps.budget);
  if (read.kind === 'over_budget') throw new AttemptError('AI_LB_OVER_BUDGET', 'the gateway holds BUFFER_BUDGET_MB of bodies already');
  if (read.kind === 'too_large') return null;
  attempt.request.exchange.holdUntilClosed(read.release);
  return read.body;
}

async function answerErrorStatus(attempt: Attempt, upstream: Dispatcher.ResponseData): Promise<AttemptResult> {
  const { deps, abort } = attempt;
  const { requestTimeoutMs } = deps.timeouts;
  abort.arm(requestTimeoutMs, 'AI_LB_BODY_TIMEOUT', 'error body not read within');
  const received = (await readWhole(attempt, upstream, MAX_ERROR_BODY_BYTES)) ?? Buffer.alloc(0);
  abort.disarm();
  return answerErrorBody(attempt, { statusCode: upstream.statusCode, headers: upstream.headers, received });
}

/** A non-2xx answer: fail over (the slot freed first), or pass a caller-fault on intact. */
async function answerErrorBody(
  attempt: Attempt,
  upstream: { statusCode: number; headers: AnswerHeaders; received: Buffer },
): Promise<AttemptResult> {
  const { deps, lease } = attempt;
  const status = upstream.statusCode;
  const raw = redactSecrets(upstream.received, deps.secrets);
  const failure = classifyStatus(status);
  const { body, message } = normalizeUpstreamError(status, header(upstream.headers['content-type']), raw);
  const clientBody = errorBodyIn(attempt.request.exchange.errorFormat, status, attempt.plan.translate === null ? raw : null, message, body);
  if (failure.retry) {
    await deps.leases.release(lease, failure.outcome);
    const retryAfterMs = parseRetryAfterMs(upstream.headers['retry-after'], deps.clock());
    const described = `${lease.node} answered HTTP ${status}: ${message}`;
    noteFailure(attempt, failure.reason, described);
    return { kind: 'failed', failure, message: described, retryAfterMs };
  }
  // The caller's fault: every node would say the same. Pass it on, status and body intact.
  sendRouted(attempt, status, 'application/json', clientBody);
  void deps.leases.release(lease, failure.outcome);
  return { kind: 'answered' };
}

/** stream:true answered with JSON (the upstream's choice): read whole, checked, sent. */
async function answerJson(attempt: Attempt, upstream: Dispatcher.ResponseData): Promise<AttemptResult> {
  const { deps, abort } = attempt;
  const { requestTimeoutMs } = deps.timeouts;
  const contentType = header(upstream.headers['content-type']) ?? 'application/json';
  abort.arm(requestTimeoutMs, 'AI_LB_BODY_TIMEOUT', 'response body not complete within');
  const body = await readWhole(attempt, upstream, MAX_RESPONSE_BYTES);
  abort.disarm();
  if (body === null) throw answerTooLarge();
  return sendJsonAnswer(attempt, upstream.statusCode, contentType, body);
}

function sendJsonAnswer(attempt: Attempt, status: number, contentType: string, body: Buffer): AttemptResult {
  // A JSON API answered with an HTML page or plain text is a proxy's error page or a
  // misconfigured server, not an answer: fail over like any unusable answer.
  if (!/json/i.test(contentType)) {
    throw new AttemptError('AI_LB_BAD_RESPONSE', `the upstream answered 200 with ${contentType.slice(0, 60)}, not JSON`);
  }
  const invalid = checkJsonAnswer(body);
  if (invalid !== null) throw invalid;
  const { exchange } = attempt.request;
  exchange.usage = usageOfAnswer(body);
  if (exchange.trace !== null) exchange.finishReason = finishReasonOfAnswer(body);
  const { translate, onRecord } = attempt.plan;
  if (translate === null && onRecord === undefined) {
    sendRouted(attempt, status, contentType, body);
  } else {
    const parsed = parseAnswer(body);
    onRecord?.(parsed);
    const out = translate === null ? body : Buffer.from(JSON.stringify(translate.answer(parsed)));
    sendRouted(attempt, status, 'application/json', out);
  }
  void attempt.deps.leases.release(attempt.lease, 'success');
  return { kind: 'answered' };
}

async function answerStream(attempt: Attempt, upstream: Dispatcher.ResponseData): Promise<AttemptResult> {
  const { deps, request, lease, abort } = attempt;
  const { exchange } = request;
  const { plan } = attempt;
  // Only a stream relayed as the node sent it can be continued by another node.
  const resume = plan.translate === null ? (request.resume ?? null) : null;
  const result = await pipeStream({
    exchange,
    upstream,
    abort,
    shape: plan.shape,
    transform: plan.translate?.stream() ?? null,
    onRecord: resume === null ? plan.onRecord : resume.observer(plan.onRecord),
    plainRecords: resume !== null,
    keepOpenOnBreak: resume !== null,
    firstTokenTimeoutMs: deps.timeouts.firstTokenTimeoutMs,
    streamIdleTimeoutMs: deps.timeouts.streamIdleTimeoutMs,
    commit: () => {
      exchange.node = lease.node;
      exchange.startStream(upstream.statusCode, {
        'x-selected-model': headerSafe(plan.model),
        'content-type': plan.translate?.contentType ?? header(upstream.headers['content-type']) ?? plan.shape.contentType,
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
        'x-routed-node': lease.node,
        'x-attempts': String(exchange.attempts),
      });
      exchange.firstTokenAt = performance.now();
      deps.metrics.streamTtfb.observe({ model: request.model }, (exchange.firstTokenAt - exchange.startedAt) / 1000);
    },
    onDroppedEvent: () => deps.metrics.droppedSseEvents.inc({ node: lease.node }),
  });
  if (!result.committed) throw result.error;
  exchange.upstreamEndAt = performance.now();
  if (result.outcome === 'failure') {
    noteFailure(attempt, classifyError(result.error).reason, `${lease.node}: stream broke: ${describe(result.error)}`);
  }
  await deps.leases.release(lease, result.outcome);
  if (result.open === true) resume?.noteBreak(lease.node, result.error);
  return { kind: 'answered' };
}

/** Metric and one log line per failed attempt: node, reason, request id — never headers or bodies. */
function noteFailure({ deps, request, lease }: Attempt, reason: FailureReason, message: string): void {
  deps.metrics.noteAttemptFailure(request.exchange, lease.node, reason, message);
  deps.log.warn(
    { requestId: request.exchange.requestId, model: request.model, node: lease.node, reason, error: message },
    'upstream attempt failed',
  );
}

/** The whole answer at once, with the routing headers every answered request carries. */
function sendRouted({ request, lease, plan }: Attempt, status: number, contentType: string, body: Buffer): void {
  const { exchange } = request;
  exchange.node = lease.node;
  exchange.upstreamEndAt = performance.now();
  exchange.firstTokenAt = exchange.upstreamEndAt;
  exchange.send(
    status,
    {
      'x-selected-model': headerSafe(plan.model),
      'content-type': contentType,
      'x-routed-node': lease.node,
      'x-attempts': String(exchange.attempts),
    },
    body,
  );
}

/**
 * An answer relayed byte for byte as it comes (audio): only the head can still fail over; a
 * break after it cuts the connection (a binary body has no error event to end it with).
 */
async function answerBinary(attempt: Attempt, upstream: Dispatcher.ResponseData): Promise<AttemptResult> {
  const { deps, request, lease, abort, plan } = attempt;
  const { exchange } = request;
  const idleMs = deps.timeouts.streamIdleTimeoutMs;
  abort.arm(idleMs, 'AI_LB_BODY_TIMEOUT', 'no answer bytes within');
  exchange.node = lease.node;
  exchange.startStream(upstream.statusCode, {
    'x-selected-model': headerSafe(plan.model),
    'content-type': header(upstream.headers['content-type']) ?? 'application/octet-stream',
    'x-routed-node': lease.node,
    'x-attempts': String(exchange.attempts),
  });
  exchange.eventStream = false;
  exchange.firstTokenAt = performance.now();
  const outcome = await new Promise<'success' | 'failure' | 'neutral'>((resolve) => {
    const { res } = exchange;
    upstream.body.on('data', (chunk: Buffer) => {
      abort.refresh();
      if (!res.write(chunk)) {
        upstream.body.pause();
        res.once('drain', () => upstream.body.resume());
      }
    });
    upstream.body.once('end', () => {
      res.end();
      resolve('success');
    });
    upstream.body.on('error', (error: unknown) => {
      res.destroy();
      resolve(classifyError(error).outcome);
    });
  });
  abort.disarm();
  exchange.upstreamEndAt = performance.now();
  await deps.leases.release(lease, outcome);
  return { kind: 'answered' };
}

function parseAnswer(body: Buffer): Record<string, unknown> {
  try {
    const value = JSON.parse(body.toString('utf8')) as unknown;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // checkJsonAnswer passed it as an object; a parse failure here is an upstream that lied
  }
  throw new AttemptError('AI_LB_BAD_RESPONSE', 'the upstream answered 200 with a body that is not a JSON object');
}

/** Whether the upstream's answer is a stream of this node's shape (its content type says so). */
function isStreamOf(shape: StreamShape, contentType: string | string[] | undefined): boolean {
  const type = (header(contentType) ?? '').toLowerCase();
  if (shape.contentType === 'application/x-ndjson') return type.startsWith('application/x-ndjson');
  return type.startsWith('text/event-stream');
}

function isEventStream(contentType: string | string[] | undefined): boolean {
  return (header(contentType) ?? '').toLowerCase().startsWith('text/event-stream');
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** For the 502 message and logs: what happened, with the code; never headers or keys. */
function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}
