import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { GATEWAY_MARK_HEADER } from '@ai-lb/shared';
import type { AbortSignalLike } from '../http/abort-switch.ts';
import type { Lease } from '../capacity/slot-leases.ts';
import { classifyError, classifyStatus, parseRetryAfterMs, type FailureReason } from '../failover/classify-failure.ts';
import type { AttemptResult } from '../failover/with-failover.ts';
import type { GatewayContext } from '../gateway-context.ts';
import { AttemptAbort } from './attempt-abort.ts';
import { AttemptError } from './attempt-error.ts';
import { checkJsonAnswer } from './check-json-answer.ts';
import { fetchWhole } from './fetch-whole.ts';
import { readBodyLimited, sendUpstream, upstreamHeaders } from './forward.ts';
import { pipeStream } from './pipe-stream.ts';
import { redactSecrets, secretsOf } from './redact-secrets.ts';
import { normalizeUpstreamError } from './upstream-error-body.ts';

/** One request as it goes through attempts: parsed once, sent as the same bytes each time. */
export interface InferenceRequest {
  route: 'chat' | 'embeddings';
  /** Upstream path, e.g. /v1/chat/completions. */
  path: string;
  model: string;
  stream: boolean;
  /** The body with `model` rewritten, serialised once. */
  payload: Buffer;
  requestId: string;
  clientHeaders: IncomingHttpHeaders;
  res: ServerResponse;
  /** Fires when the client goes away. */
  clientSignal: AbortSignalLike;
  /** performance.now() at arrival. */
  startedAt: number;
  /** Filled in when the response head goes out (metrics read it when the request ends). */
  trace: ResponseTrace;
}

/**
 * What the response says about the request, kept beside it rather than read back with
 * res.getHeader: the head is written in one writeHead call (see routedHead).
 */
export interface ResponseTrace {
  model: string | null;
  node: string | null;
  eventStream: boolean;
}

/** Bigger non-stream answers than this are not an LLM answer; guards the gateway's memory. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
const MAX_ERROR_BODY_BYTES = 1024 * 1024;

/**
 * One attempt on one leased node: send, then answer the client (JSON, stream, or an
 * upstream caller-fault passed through) or report a failure. The slot is released exactly
 * once: before returning on failure (so the next attempt never overlaps it), after the
 * response has ended on success.
 */
export async function runAttempt(
  ctx: GatewayContext,
  request: InferenceRequest,
  lease: Lease,
  attemptNumber: number,
): Promise<AttemptResult> {
  const node = ctx.fleet.node(lease.node);
  const abort = new AttemptAbort(request.clientSignal);
  const attempt: Attempt = { ctx, request, lease, number: attemptNumber, abort };
  const gauge = ctx.metrics.inflight.labels({ node: lease.node });
  gauge.value++;
  let upstream: Dispatcher.ResponseData | undefined;
  try {
    if (node === undefined) throw new AttemptError('AI_LB_BAD_RESPONSE', `node ${lease.node} left the fleet`);
    const { requestTimeoutMs } = ctx.config;
    abort.arm(requestTimeoutMs, 'AI_LB_HEADERS_TIMEOUT', `no response head within ${requestTimeoutMs} ms`);
    const headers = upstreamHeaders(request.clientHeaders, lease.node, request.requestId, {
      nodeApiKeys: ctx.config.nodeApiKeys,
      gatewayKeysSet: ctx.config.gatewayApiKeys.length > 0,
    });
    const sentAt = performance.now();
    const pool = ctx.pools.get(node);
    if (!request.stream) return await answerWhole(attempt, { pool, headers, sentAt });
    upstream = await sendUpstream(pool, { path: request.path, body: request.payload, headers }, abort);
    ctx.fleet.recordLatency(lease.node, performance.now() - sentAt);
    if (upstream.statusCode < 200 || upstream.statusCode > 299) {
      return await answerErrorStatus(attempt, upstream);
    }
    if (isEventStream(upstream.headers['content-type'])) {
      return await answerStream(attempt, upstream);
    }
    return await answerJson(attempt, upstream);
  } catch (error) {
    // Whatever is left of the upstream answer is not wanted: free the connection.
    if (upstream !== undefined && !upstream.body.destroyed) upstream.body.destroy();
    const failure = classifyError(error);
    await ctx.leases.release(lease, failure.outcome);
    if (failure.reason === 'client_abort') return { kind: 'aborted' };
    const message = `${lease.node}: ${describe(error)}`;
    noteFailure(attempt, failure.reason, message);
    return { kind: 'failed', failure, message, retryAfterMs: null };
  } finally {
    abort.dispose();
    gauge.value--;
  }
}

/** One attempt of one request on one node: what every step below needs, built once. */
interface Attempt {
  ctx: GatewayContext;
  request: InferenceRequest;
  lease: Lease;
  /** 1 for the first attempt; sent as x-attempts. */
  number: number;
  abort: AttemptAbort;
}

/**
 * stream:false: the answer is read whole before anything is sent (so a body that breaks
 * half-way can still fail over), through a bare dispatch handler (fetch-whole.ts).
 */
async function answerWhole(
  attempt: Attempt,
  send: { pool: Dispatcher; headers: Record<string, string>; sentAt: number },
): Promise<AttemptResult> {
  const { ctx, request, lease, abort } = attempt;
  const { requestTimeoutMs } = ctx.config;
  const whole = await fetchWhole(
    send.pool,
    {
      path: request.path,
      body: request.payload,
      headers: send.headers,
      onHead: (status, headers) => {
        ctx.fleet.recordLatency(lease.node, performance.now() - send.sentAt);
        if (status < 200 || status > 299) {
          abort.arm(requestTimeoutMs, 'AI_LB_BODY_TIMEOUT', `error body not read within ${requestTimeoutMs} ms`);
          return MAX_ERROR_BODY_BYTES;
        }
        if (isEventStream(headers['content-type'])) {
          return new AttemptError('AI_LB_BAD_RESPONSE', 'the upstream answered stream:false with an event stream');
        }
        abort.arm(requestTimeoutMs, 'AI_LB_BODY_TIMEOUT', `response body not complete within ${requestTimeoutMs} ms`);
        return MAX_RESPONSE_BYTES;
      },
    },
    abort,
  );
  abort.disarm();
  const { statusCode, headers, body } = whole;
  if (statusCode < 200 || statusCode > 299) {
    return answerErrorBody(attempt, { statusCode, headers, received: body ?? Buffer.alloc(0) });
  }
  if (body === null) throw new AttemptError('AI_LB_BAD_RESPONSE', `the upstream answer exceeded ${MAX_RESPONSE_BYTES} bytes`);
  return sendJsonAnswer(attempt, statusCode, header(headers['content-type']) ?? 'application/json', body);
}

async function answerErrorStatus(attempt: Attempt, upstream: Dispatcher.ResponseData): Promise<AttemptResult> {
  const { ctx, abort } = attempt;
  abort.arm(ctx.config.requestTimeoutMs, 'AI_LB_BODY_TIMEOUT', `error body not read within ${ctx.config.requestTimeoutMs} ms`);
  const received = (await readBodyLimited(upstream.body, MAX_ERROR_BODY_BYTES)) ?? Buffer.alloc(0);
  abort.disarm();
  return answerErrorBody(attempt, { statusCode: upstream.statusCode, headers: upstream.headers, received });
}

/** A non-2xx answer: fail over (the slot freed first), or pass a caller-fault on intact. */
async function answerErrorBody(
  attempt: Attempt,
  upstream: { statusCode: number; headers: IncomingHttpHeaders; received: Buffer },
): Promise<AttemptResult> {
  const { ctx, lease } = attempt;
  const status = upstream.statusCode;
  const raw = redactSecrets(upstream.received, secretsOf(ctx.config.nodeApiKeys, ctx.config.gatewayApiKeys));
  const failure = classifyStatus(status);
  const { body, message } = normalizeUpstreamError(status, header(upstream.headers['content-type']), raw);
  if (failure.retry) {
    await ctx.leases.release(lease, failure.outcome);
    const retryAfterMs = parseRetryAfterMs(upstream.headers['retry-after'], ctx.clock());
    const described = `${lease.node} answered HTTP ${status}: ${message}`;
    noteFailure(attempt, failure.reason, described);
    return { kind: 'failed', failure, message: described, retryAfterMs };
  }
  // The caller's fault: every node would say the same. Pass it on, status and body intact.
  sendRouted(attempt, status, 'application/json', body);
  void ctx.leases.release(lease, failure.outcome);
  return { kind: 'answered' };
}

/** stream:true answered with JSON (the upstream's choice): read whole, checked, sent. */
async function answerJson(attempt: Attempt, upstream: Dispatcher.ResponseData): Promise<AttemptResult> {
  const { ctx, abort } = attempt;
  const contentType = header(upstream.headers['content-type']) ?? 'application/json';
  abort.arm(ctx.config.requestTimeoutMs, 'AI_LB_BODY_TIMEOUT', `response body not complete within ${ctx.config.requestTimeoutMs} ms`);
  const body = await readBodyLimited(upstream.body, MAX_RESPONSE_BYTES);
  abort.disarm();
  if (body === null) throw new AttemptError('AI_LB_BAD_RESPONSE', `the upstream answer exceeded ${MAX_RESPONSE_BYTES} bytes`);
  return sendJsonAnswer(attempt, upstream.statusCode, contentType, body);
}

function sendJsonAnswer(attempt: Attempt, status: number, contentType: string, body: Buffer): AttemptResult {
  // Only JSON is checked: another content type for stream:false is the upstream's choice to make.
  const invalid = /json/i.test(contentType) ? checkJsonAnswer(body) : null;
  if (invalid !== null) throw invalid;
  sendRouted(attempt, status, contentType, body);
  void attempt.ctx.leases.release(attempt.lease, 'success');
  return { kind: 'answered' };
}

async function answerStream(attempt: Attempt, upstream: Dispatcher.ResponseData): Promise<AttemptResult> {
  const { ctx, request, lease, abort } = attempt;
  const { res } = request;
  const result = await pipeStream({
    res,
    upstream,
    abort,
    firstTokenTimeoutMs: ctx.config.firstTokenTimeoutMs,
    streamIdleTimeoutMs: ctx.config.streamIdleTimeoutMs,
    commit: () => {
      request.trace.node = lease.node;
      request.trace.eventStream = true;
      res.writeHead(upstream.statusCode, {
        [GATEWAY_MARK_HEADER]: '1',
        'x-request-id': request.requestId,
        'x-selected-model': request.model,
        'content-type': header(upstream.headers['content-type']) ?? 'text/event-stream',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
        'x-routed-node': lease.node,
        'x-attempts': String(attempt.number),
      });
      ctx.metrics.streamTtfb.observe({ model: request.model }, (performance.now() - request.startedAt) / 1000);
    },
    onDroppedEvent: () => ctx.metrics.droppedSseEvents.inc({ node: lease.node }),
  });
  if (!result.committed) throw result.error;
  if (result.outcome === 'failure') {
    noteFailure(attempt, classifyError(result.error).reason, `${lease.node}: stream broke: ${describe(result.error)}`);
  }
  await ctx.leases.release(lease, result.outcome);
  return { kind: 'answered' };
}

/** Metric and one log line per failed attempt: node, reason, request id — never headers or bodies. */
function noteFailure({ ctx, request, lease }: Attempt, reason: FailureReason, message: string): void {
  ctx.metrics.upstreamFailures.inc({ node: lease.node, reason });
  ctx.log.warn('upstream attempt failed', { requestId: request.requestId, model: request.model, node: lease.node, reason, error: message });
}

/**
 * The whole head in one writeHead call, the SPEC headers included: with no setHeader
 * before it, node:http builds the head straight from this object (issue 6: four setHeader
 * calls and the merge they force measured several % of the gateway's CPU per request).
 */
function sendRouted({ request, lease, number }: Attempt, status: number, contentType: string, body: Buffer): void {
  const { node } = lease;
  request.trace.node = node;
  request.res.writeHead(status, {
    [GATEWAY_MARK_HEADER]: '1',
    'x-request-id': request.requestId,
    'x-selected-model': request.model,
    'content-type': contentType,
    'content-length': body.length,
    'x-routed-node': node,
    'x-attempts': String(number),
  });
  request.res.end(body);
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
