import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Request, Response } from 'express';
import { GatewayError, type NodeId } from '@ai-lb/shared';
import { withFailover } from '../failover/with-failover.ts';
import { AttemptError } from '../forwarding/attempt-error.ts';
import { endedWithError } from '../forwarding/pipe-stream.ts';
import { runAttempt, type InferenceRequest } from '../forwarding/run-attempt.ts';
import type { GatewayContext } from '../gateway-context.ts';
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
    res.setHeader('x-request-id', requestId);
    res.setHeader('x-attempts', '0');
    const clientSignal = watchClient(res);
    recordWhenDone(ctx, spec.route, res, startedAt);

    const body = await readJsonBody(req, ctx.config.maxBodyBytes, ctx.config.requestTimeoutMs);
    const { stream } = spec.validate(body);
    const forcedNode = queryParam(req.query, 'node');
    const model = resolve(ctx, spec, body.model, queryParam(req.query, 'require_all') === 'true');
    res.setHeader('x-selected-model', model);
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
      requestId,
      clientHeaders: req.headers,
      res,
      clientSignal,
      startedAt,
    };
    try {
      await forwardWithFailover(ctx, request, candidates.map((n) => n.node), forcedNode, req.headers['x-session-id']);
    } catch (error) {
      // The client left mid-way (queue, backoff): nobody to answer.
      if ((error as { code?: unknown })?.code === 'AI_LB_CLIENT_ABORT') return void res.destroy();
      throw error;
    }
  };
}

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
  const sticky = config.stickySessions && sessionId !== null ? { key: `${request.model}:${sessionId}`, ttlMs: config.stickyTtlMs } : undefined;
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

/** Aborts when the client's connection closes before the response has been sent in full. */
function watchClient(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new AttemptError('AI_LB_CLIENT_ABORT', 'the client closed the connection'));
  });
  return controller.signal;
}

function recordWhenDone(ctx: GatewayContext, route: string, res: ServerResponse, startedAt: number): void {
  res.once('close', () => {
    const model = res.getHeader('x-selected-model');
    const node = res.getHeader('x-routed-node');
    ctx.metrics.requests.inc({
      route,
      model: typeof model === 'string' ? model : 'none',
      node: typeof node === 'string' ? node : 'none',
      status: !res.writableFinished ? 'aborted' : endedWithError(res) ? 'stream_error' : String(res.statusCode),
    });
    const stream = String(res.getHeader('content-type') ?? '').startsWith('text/event-stream');
    ctx.metrics.requestDuration.observe({ route, stream: String(stream) }, (performance.now() - startedAt) / 1000);
  });
}
