import { GatewayError, normalizeNodeId, type Config, type NodeId, type NodeState } from '@ai-lb/shared';
import type { SlotLeases } from '../capacity/slot-leases.ts';
import { withFailover, type NodeCooldowns } from '../failover/with-failover.ts';
import { runAttempt, type AttemptDeps, type InferenceRequest } from '../forwarding/run-attempt.ts';
import type { Exchange } from '../http/exchange.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { FleetCache } from '../routing/fleet-cache.ts';
import { resolveModel } from '../routing/routing-rules.ts';
import { planAcquire, type RoutingCandidate } from '../routing/routing-rules.ts';

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
    if (typeof body.value.model === 'string') exchange.requestedModel = body.value.model;
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
    const request: InferenceRequest = { exchange, upstreamPath: surface.upstreamPath, model, stream, payloadFor: () => payload };
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
    knownModel: (name) => fleet.knownModel(name),
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
    place: (choice) =>
      leases.acquire(
        () =>
          planAcquire(routingCandidates(fleet, choice.allowed), {
            strategy: config.routingStrategy,
            rotateKey: model,
            previousNode: choice.previousNode,
            random: deps.random,
          }),
        {
          // A forced node has a queue of its own: its waiters must not hold up the model's.
          group: forced ? `${model}@${candidates[0]}` : model,
          sticky: choice.index === 0 ? sticky : undefined,
          signal: exchange.clientGone,
          mayQueue: true,
          waits: exchange,
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

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The body that goes upstream: the client's bytes, with only the top-level `model` value
 * replaced when resolution changed it (a sentinel, an alias, LM_MODEL for a body without
 * one). Never parsed and re-serialised: that would turn `"seed": 12345678901234567890` into
 * 12345678901234567000 and `1e999` into null, and reorder nothing the client can see but
 * everything a cache key or a signature can. `parsed` is `raw` parsed (a JSON object).
 */
export function withModel(raw: Buffer, parsed: Record<string, unknown>, model: string): Buffer {
  if (parsed.model === model) return raw;
  const text = raw.toString('utf8');
  const value = JSON.stringify(model);
  const span = topLevelValueSpan(text, 'model');
  if (span !== null) return Buffer.from(text.slice(0, span.start) + value + text.slice(span.end));
  // No `model` key: add it first, so the object stays valid whatever follows.
  const open = text.indexOf('{');
  const empty = text
    .slice(open + 1)
    .trimStart()
    .startsWith('}');
  return Buffer.from(`${text.slice(0, open + 1)}"model":${value}${empty ? '' : ','}${text.slice(open + 1)}`);
}

/**
 * Where the value of a top-level key stands in a JSON object's text, [start, end); the last
 * occurrence when the key repeats (JSON.parse keeps the last one). Keys are compared decoded,
 * so "mod\u0065l" is "model". Null when the key is absent.
 */
export function topLevelValueSpan(text: string, key: string): { start: number; end: number } | null {
  let depth = 0;
  let expectKey = false;
  let valueStart = -1;
  let span: { start: number; end: number } | null = null;
  const close = (at: number) => {
    if (depth === 1 && valueStart !== -1) {
      span = { start: valueStart, end: trimmedEnd(text, at) };
      valueStart = -1;
    }
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (depth === 1 && expectKey) {
        expectKey = false;
        if (JSON.parse(text.slice(i, end + 1)) === key) {
          let j = text.indexOf(':', end + 1) + 1;
          while (isBlank(text.charCodeAt(j))) j++;
          valueStart = j;
          i = j - 1;
          continue;
        }
      }
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth === 1) expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      close(i);
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      close(i);
      expectKey = true;
    }
  }
  return span;
}

/** Index of the quote that closes the string opening at `start`. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) i++;
    else if (c === QUOTE) return i;
  }
  return text.length - 1;
}

function trimmedEnd(text: string, at: number): number {
  let end = at;
  while (end > 0 && isBlank(text.charCodeAt(end - 1))) end--;
  return end;
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
