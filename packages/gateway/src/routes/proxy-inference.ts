import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Request, Response } from 'express';
import { GatewayError, type NodeId } from '@ai-lb/shared';
import { withFailover } from '../failover/with-failover.ts';
import { AttemptError } from '../forwarding/attempt-error.ts';
import { endedWithError } from '../forwarding/pipe-stream.ts';
import { runAttempt, type InferenceRequest, type ResponseTrace } from '../forwarding/run-attempt.ts';
import type { GatewayContext } from '../gateway-context.ts';
import { AbortSwitch } from '../http/abort-switch.ts';
import { readJsonBody } from '../http/read-json-body.ts';
import { queryParam } from '../http/query-param.ts';
import { pickRequestId } from '../http/request-id.ts';
import { resolveModel } from '../routing/resolve-model.ts';
import { selectCandidates } from '../routing/select-candidates.ts';
import { planAcquire, type RoutingCandidate } from '../routing/strategies.ts';

export interface InferenceRouteSpec {
  route: InferenceRequest['route'];
  /** The upstream path (the same as the gateway's). */
  path: string;
  /** Chat without `model` uses LM_MODEL; embeddings need a model. */
  fallbackToLmModel: boolean;
  /** Throws a 400 naming the field; returns what the gateway itself needs from the body. */
  validate(body: Record<string, unknown>): { stream: boolean };
}

const SANE_SESSION_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * POST /v1/chat/completions and /v1/embeddings: the request's path through the gateway,
 * step by step (STYLE "The request's path"). Each step lives in its own module.
 */
export function inferenceRoute(ctx: GatewayContext, spec: InferenceRouteSpec) {
  return async function handleInference(req: Request, res: Response): Promise<void> {
    const startedAt = performance.now();
    const requestId = pickRequestId(req.headers['x-request-id']);
    const trace: ResponseTrace = { model: null, node: null, eventStream: false };
    const clientSignal = watchClient(ctx, spec.route, res, startedAt, trace);
    try {
      await proxy(ctx, spec, req, { requestId, res, clientSignal, startedAt, trace });
    } catch (error) {
      // The client left mid-way (queue, backoff): nobody to answer.
      if ((error as { code?: unknown })?.code === 'AI_LB_CLIENT_ABORT') return void res.destroy();
      // A routed answer writes its whole head at once (run-attempt.ts); an error answer
      // carries the same request headers, set here for the error middleware.
      if (!res.headersSent) {
        res.setHeader('x-request-id', requestId);
        res.setHeader('x-attempts', '0');
        if (trace.model !== null) res.setHeader('x-selected-model', trace.model);
      }
      throw error;
    }
  };
}

type RequestState = Pick<InferenceRequest, 'requestId' | 'res' | 'clientSignal' | 'startedAt' | 'trace'>;

async function proxy(ctx: GatewayContext, spec: InferenceRouteSpec, req: Request, state: RequestState): Promise<void> {
  const body = await readJsonBody(req, ctx.config.maxBodyBytes, ctx.config.requestTimeoutMs);
  const { stream } = spec.validate(body);
  // Only a URL with a query string has parameters: skip express's query parsing otherwise.
  const query = req.url.includes('?') ? req.query : NO_QUERY;
  const forcedNode = queryParam(query, 'node');
  const model = resolve(ctx, spec, body.model, queryParam(query, 'require_all') === 'true');
  state.trace.model = model;
  const selected = selectCandidates({
    model,
    servingNodes: ctx.fleet.healthyNodesFor(model),
    circuitOpen: (id) => ctx.fleet.circuit(id).state === 'open',
    forcedNode,
  });
  const candidates = forcedNode === null ? ctx.cooldowns.filter(selected) : selected;
  if (candidates.length === 0) {
    throw new GatewayError('no_eligible_node', `no healthy node serves model '${model}' right now`, {
      headers: { 'retry-after': String(ctx.config.retryAfterSecs) },
    });
  }
  body.model = model;
  const request: InferenceRequest = {
    route: spec.route,
    path: spec.path,
    model,
    stream,
    payload: serialize(body),
    clientHeaders: req.headers,
    ...state,
  };
  await forwardWithFailover(
    ctx,
    request,
    candidates.map((n) => n.node),
    forcedNode,
    req.headers['x-session-id'],
  );
}

const NO_QUERY: Record<string, unknown> = Object.freeze({});

/**
 * JSON.parse copes with any nesting, JSON.stringify recurses: a body nested thousands deep
 * (a hostile client) overflows the stack here. That is the caller's fault, so a 400, not a 500.
 */
function serialize(body: Record<string, unknown>): Buffer {
  try {
    return Buffer.from(JSON.stringify(body));
  } catch (error) {
    if (error instanceof RangeError) throw new GatewayError('invalid_json', 'the request body is nested too deeply', { cause: error });
    throw error;
  }
}

function resolve(ctx: GatewayContext, spec: InferenceRouteSpec, requested: unknown, requireAll: boolean): string {
  const { config, fleet } = ctx;
  return resolveModel({
    requested: requested as string | undefined,
    fallbackToLmModel: spec.fallbackToLmModel,
    sentinels: config.modelSentinels,
    lmModel: config.lmModel,
    preferred: config.preferredModels,
    strategy: config.autoModelStrategy,
    requireAll,
    isKnownModel: (id) => fleet.knowsModel(id),
    nodes: () => fleet.modelViews(),
  }).model;
}

async function forwardWithFailover(
  ctx: GatewayContext,
  request: InferenceRequest,
  candidates: NodeId[],
  forcedNode: string | null,
  sessionHeader: string | string[] | undefined,
): Promise<void> {
  const { config, metrics } = ctx;
  const sessionId = typeof sessionHeader === 'string' && SANE_SESSION_ID.test(sessionHeader) ? sessionHeader : null;
  const sticky =
    config.stickySessions && sessionId !== null ? { key: `${request.model}:${sessionId}`, ttlMs: config.stickyTtlMs } : undefined;
  const outcome = await withFailover({
    model: request.model,
    candidates,
    maxRetries: config.maxRetries,
    budgetMs: config.requestTimeoutMs,
    retryAfterSecs: config.retryAfterSecs,
    clock: ctx.clock,
    random: ctx.random,
    signal: request.clientSignal,
    place: (spec) =>
      ctx.leases.acquire(
        () =>
          planAcquire(routingCandidates(ctx, spec.allowed), {
            strategy: config.routingStrategy,
            rotateKey: request.model,
            previousNode: spec.previousNode,
            random: ctx.random,
          }),
        {
          group: forcedNode === null ? request.model : `${request.model}@${candidates[0]}`,
          sticky: spec.index === 0 ? sticky : undefined,
          signal: request.clientSignal,
          mayQueue: true,
        },
      ),
    attempt: (lease, attemptNumber) => runAttempt(ctx, request, lease, attemptNumber),
    onRetry: (sameNode) => metrics.retries.inc({ kind: sameNode ? 'same_node' : 'failover' }),
    onRetryAfter: (node, untilMs) => ctx.cooldowns.note(node, untilMs),
  });
  if (outcome.aborted && !request.res.writableEnded) request.res.destroy();
}

function routingCandidates(ctx: GatewayContext, nodes: readonly NodeId[]): RoutingCandidate[] {
  const out: RoutingCandidate[] = [];
  for (const id of nodes) {
    const node = ctx.fleet.node(id);
    if (node === undefined) continue;
    out.push({
      node: id,
      maxconn: node.maxconn,
      inflight: ctx.fleet.inflightOf(id),
      latencyMs: ctx.fleet.latencyOf(node),
      failures: ctx.fleet.circuit(id).failures,
    });
  }
  return out;
}

/**
 * One 'close' listener per request does both jobs: abort the request's work when the client
 * left before the response was sent in full, and count the request in the metrics.
 */
function watchClient(ctx: GatewayContext, route: string, res: ServerResponse, startedAt: number, trace: ResponseTrace): AbortSwitch {
  // An AbortSwitch, not an AbortController: see abort-switch.ts (issue 6).
  const controller = new AbortSwitch();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new AttemptError('AI_LB_CLIENT_ABORT', 'the client closed the connection'));
    ctx.metrics.requests.inc({
      route,
      model: trace.model ?? 'none',
      node: trace.node ?? 'none',
      status: !res.writableFinished ? 'aborted' : endedWithError(res) ? 'stream_error' : String(res.statusCode),
    });
    ctx.metrics.requestDuration.observe({ route, stream: trace.eventStream ? 'true' : 'false' }, (performance.now() - startedAt) / 1000);
  });
  return controller;
}
