import { GatewayError, normalizeNodeId, type Config, type NodeId, type NodeState } from '@ai-lb/shared';
import type { SlotLeases } from '../capacity/slot-leases.ts';
import type { NodeCooldowns } from '../failover/node-cooldowns.ts';
import { withFailover } from '../failover/with-failover.ts';
import { runAttempt, type AttemptDeps, type InferenceRequest } from '../forwarding/run-attempt.ts';
import type { Exchange } from '../http/exchange.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { FleetCache } from '../routing/fleet-cache.ts';
import { resolveModel } from '../routing/resolve-model.ts';
import { planAcquire, type RoutingCandidate } from '../routing/strategies.ts';
import { withModel } from './rewrite-model.ts';

/** What one API surface adds to the shared inference path: its upstream path and its body rules. */
export interface InferenceSurface {
  /** The surface's name: the metrics label, and `surface` in the endpoint table. */
  name: string;
  /** Where the request goes on the node. */
  upstreamPath: string;
  /** A body without `model` uses LM_MODEL (chat), or is a 400 (embeddings). */
  fallbackToLmModel: boolean;
  /** Throws a 400 naming the field; returns what the gateway itself needs from the body. */
  validate(body: Record<string, unknown>): { stream: boolean };
}

/** What the inference path uses. */
export interface InferenceDeps extends AttemptDeps {
  config: Pick<
    Config,
    | 'maxBodyBytes'
    | 'requestTimeoutMs'
    | 'maxRetries'
    | 'retryAfterSecs'
    | 'routingStrategy'
    | 'stickySessions'
    | 'stickyTtlMs'
    | 'modelSentinels'
    | 'lmModel'
    | 'preferredModels'
    | 'autoModelStrategy'
  >;
  fleet: FleetCache;
  leases: SlotLeases;
  cooldowns: NodeCooldowns;
  metrics: AttemptDeps['metrics'] & Pick<GatewayMetrics, 'retries' | 'capacityRejections'>;
  random: () => number;
}

/** The query parameters that steer routing; their misspellings are refused, not ignored. */
const ROUTING_PARAMS = ['node', 'require_all'] as const;
const SANE_SESSION_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * The request's path through the gateway, one step per line: read the body once, validate,
 * resolve the model, pick the candidates, then attempts with failover — each attempt leases a
 * slot, forwards, and answers the client or reports why it could not.
 */
export function inferenceRoute(deps: InferenceDeps, surface: InferenceSurface) {
  return async function handleInference(exchange: Exchange): Promise<void> {
    const { config, fleet } = deps;
    const body = await exchange.readJson(config.maxBodyBytes, config.requestTimeoutMs);
    const { stream } = surface.validate(body.value);
    exchange.rejectMisspelledParams(ROUTING_PARAMS);
    const forcedNode = exchange.queryParam('node');
    const model = resolve(deps, surface, body.value.model, exchange.queryParam('require_all') === 'true');
    exchange.model = model;
    const selected = selectCandidates({
      model,
      servingNodes: fleet.healthyNodesFor(model),
      circuitOpen: (id) => fleet.circuit(id).state === 'open',
      forcedNode,
    });
    const candidates = forcedNode === null ? deps.cooldowns.filter(selected) : selected;
    if (candidates.length === 0) {
      throw new GatewayError('no_eligible_node', `no healthy node serves model '${model}' right now`, {
        headers: { 'retry-after': String(config.retryAfterSecs) },
      });
    }
    const payload = withModel(body.raw, body.value, model);
    const request: InferenceRequest = { exchange, upstreamPath: surface.upstreamPath, model, stream, payload };
    try {
      await forwardWithFailover(deps, request, candidates, forcedNode !== null);
    } catch (error) {
      if ((error as GatewayError).code === 'capacity_exhausted') deps.metrics.capacityRejections.inc({ model });
      throw error;
    }
  };
}

function resolve(deps: InferenceDeps, surface: InferenceSurface, requested: unknown, requireAll: boolean): string {
  const { config, fleet } = deps;
  return resolveModel({
    requested: requested as string | undefined,
    fallbackToLmModel: surface.fallbackToLmModel,
    sentinels: config.modelSentinels,
    lmModel: config.lmModel,
    preferred: config.preferredModels,
    strategy: config.autoModelStrategy,
    requireAll,
    isKnownModel: (id) => fleet.knowsModel(id),
    nodes: () => fleet.modelViews(),
  }).model;
}

export interface SelectCandidatesInput {
  model: string;
  /** Healthy nodes that list the model, sorted by id (FleetCache.healthyNodesFor). */
  servingNodes: readonly NodeState[];
  /** Whether the cached circuit of a node is open now. */
  circuitOpen: (node: NodeId) => boolean;
  /** `?node=host:port`, or null. */
  forcedNode: string | null;
}

/**
 * The nodes a request may go to, pure. Nodes whose circuit the cache sees open are left out
 * so round-robin spreads over the working ones — unless that leaves none: then all go to
 * acquireSlot, which knows the live circuit state and may hand out the half-open probe.
 * Caps are not checked here: acquireSlot does that with live counts.
 */
export function selectCandidates(input: SelectCandidatesInput): NodeState[] {
  if (input.forcedNode !== null) {
    // ?node= is only ever a choice among fleet nodes: the gateway never dials an address a client made up.
    const wanted = normalizeNodeId(input.forcedNode);
    const node = input.servingNodes.find((n) => n.node === wanted);
    if (node === undefined) {
      const shown = input.forcedNode.slice(0, 100);
      throw new GatewayError('node_not_eligible', `node '${shown}' is not a healthy known node serving model '${input.model}'`, {
        param: 'node',
      });
    }
    return [node];
  }
  const closed = input.servingNodes.filter((n) => !input.circuitOpen(n.node));
  return closed.length > 0 ? closed : [...input.servingNodes];
}

async function forwardWithFailover(
  deps: InferenceDeps,
  request: InferenceRequest,
  nodes: readonly NodeState[],
  forced: boolean,
): Promise<void> {
  const { config, metrics, leases, fleet } = deps;
  const { exchange, model } = request;
  const candidates = nodes.map((n) => n.node);
  const session = exchange.req.headers['x-session-id'];
  const sessionId = typeof session === 'string' && SANE_SESSION_ID.test(session) ? session : null;
  const sticky = config.stickySessions && sessionId !== null ? { key: `${model}:${sessionId}`, ttlMs: config.stickyTtlMs } : undefined;
  const outcome = await withFailover({
    model,
    candidates,
    maxRetries: config.maxRetries,
    budgetMs: config.requestTimeoutMs,
    retryAfterSecs: config.retryAfterSecs,
    clock: deps.clock,
    random: deps.random,
    signal: exchange.clientGone,
    place: (spec) =>
      leases.acquire(
        () =>
          planAcquire(routingCandidates(fleet, spec.allowed), {
            strategy: config.routingStrategy,
            rotateKey: model,
            previousNode: spec.previousNode,
            random: deps.random,
          }),
        {
          // A forced node has a queue of its own: its waiters must not hold up the model's.
          group: forced ? `${model}@${candidates[0]}` : model,
          sticky: spec.index === 0 ? sticky : undefined,
          signal: exchange.clientGone,
          mayQueue: true,
        },
      ),
    attempt: (lease, attemptNumber) => runAttempt(deps, request, lease, attemptNumber),
    onRetry: (sameNode) => metrics.retries.inc({ kind: sameNode ? 'same_node' : 'failover' }),
    onRetryAfter: (node, untilMs) => deps.cooldowns.note(node, untilMs),
  });
  if (outcome.aborted && !exchange.res.writableEnded) exchange.res.destroy();
}

function routingCandidates(fleet: FleetCache, nodes: readonly NodeId[]): RoutingCandidate[] {
  const out: RoutingCandidate[] = [];
  for (const id of nodes) {
    const node = fleet.node(id);
    if (node === undefined) continue;
    out.push({
      node: id,
      maxconn: node.maxconn,
      inflight: fleet.inflightOf(id),
      latencyMs: fleet.latencyOf(node),
      failures: fleet.circuit(id).failures,
    });
  }
  return out;
}
