import { GatewayError, normalizeNodeId, type ApiSurface, type Config, type NodeId, type NodeState } from '@ai-lb/shared';
import type { Placement, SlotLeases } from '../capacity/slot-leases.ts';
import { withFailover, type NodeCooldowns } from '../failover/with-failover.ts';
import { StreamResumer } from '../forwarding/continue-stream.ts';
import { runAttempt, type AttemptDeps, type InferenceRequest, type UpstreamPlan } from '../forwarding/run-attempt.ts';
import { OPENAI_SSE, type StreamShape, type StreamTransform } from '../forwarding/stream-shapes.ts';
import type { Exchange, JsonBody } from '../http/exchange.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { FleetCache } from '../routing/fleet-cache.ts';
import { affinityKey } from '../routing/affinity-key.ts';
import { planAcquire, resolveModel } from '../routing/routing-rules.ts';
import { multipartModel, withModel, withMultipartModel } from './request-body.ts';

/** What one API surface adds to the shared inference path: where it goes, its body rules, how its answers look. */
export interface InferenceSurface {
  /** The surface's name: the metrics label, and `surface` in the endpoint table. */
  name: string;
  /** What a node must serve to take the request as it is (the monitor records it per node). */
  needs: ApiSurface;
  /** Where the request goes on a node that serves `needs`. */
  upstreamPath: string;
  /** A body without `model` uses LM_MODEL (chat), or is a 400 (embeddings). */
  fallbackToLmModel: boolean;
  /** 'multipart': an upload whose `model` is a form field (audio); default a JSON object. */
  body?: 'json' | 'multipart';
  /** Throws a 400 naming the field; returns what the gateway itself needs from the body. */
  validate(body: Record<string, unknown>): { stream: boolean };
  /** How a native node's stream looks (default: OpenAI chat/completions SSE). */
  streams?: StreamShape;
  /** 'binary': the answer's bytes are relayed as they come (audio); default a checked JSON answer. */
  answers?: 'json' | 'binary';
  /** For nodes without `needs`: the request translated to another surface they serve. */
  translation?: SurfaceTranslation;
  /**
   * A node the request must go to, whatever the strategy (a Responses follow-up), and the
   * error when that node cannot take it now; null: any node.
   */
  pinnedNode?(body: Record<string, unknown>): Promise<{ node: NodeId; whenGone: GatewayError } | null>;
  /** Sees each parsed answer (JSON) and stream event of the node that answered. */
  observe?(exchange: Exchange, record: Record<string, unknown>, node: NodeId): void;
}

export interface SurfaceTranslation {
  /** What a node must serve to take the translated request. */
  via: ApiSurface;
  /** One request's translation (throws a 400 naming the field for what cannot be translated). */
  begin(body: Record<string, unknown>, model: string): RequestTranslation;
}

export interface RequestTranslation {
  /** The path and body (translatedBytes) for a node that takes the translated request. */
  request(node: NodeState): { path: string; body: Buffer };
  /** A whole answer of the node (parsed) -> the client's. */
  answer(upstream: unknown): unknown;
  /** One attempt's stream translator. */
  stream(): StreamTransform;
  /** The content type of the translated stream. */
  streamContentType: string;
}

/**
 * A translated request's bytes for each kind of node: `top_k` is not an OpenAI field, so
 * only servers known to take it get it. Serialised once, when the translation begins: the
 * translation shares the parsed body's strings, and nothing may hold those while the request
 * waits (see planner); a failover sends the same bytes again.
 */
export function translatedBytes(body: object): { forKind(kind: NodeState['kind']): Buffer } {
  const whole = Buffer.from(JSON.stringify(body));
  if ((body as { top_k?: unknown }).top_k === undefined) return { forKind: () => whole };
  const { top_k: _, ...withoutTopK } = body as { top_k?: unknown };
  const plain = Buffer.from(JSON.stringify(withoutTopK));
  return { forKind: (kind) => (kind === 'openai' ? plain : whole) };
}

/**
 * The fields every surface's body shares: `model` a string when present, `stream` a boolean
 * when present (absent: `streamByDefault`, true for Ollama's API). Returns the stream flag.
 */
export function modelAndStream(body: Record<string, unknown>, streamByDefault = false): { stream: boolean } {
  if (body.model !== undefined && typeof body.model !== 'string') {
    throw new GatewayError('invalid_request', "'model' must be a string", { param: 'model' });
  }
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
    throw new GatewayError('invalid_request', "'stream' must be a boolean", { param: 'stream' });
  }
  return { stream: typeof body.stream === 'boolean' ? body.stream : streamByDefault };
}

/** Throws a 400 naming `param` unless `ok`. */
export function require(ok: boolean, param: string, message: string): void {
  if (!ok) throw new GatewayError('invalid_request', message, { param });
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
    | 'streamResume'
  >;
  fleet: FleetCache;
  leases: SlotLeases;
  cooldowns: NodeCooldowns;
  metrics: AttemptDeps['metrics'] & Pick<GatewayMetrics, 'retries' | 'capacityRejections' | 'streamResumes' | 'noteAttemptFailure'>;
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
    await routeInference(deps, surface, exchange, await readRequestBody(exchange, surface, deps.config));
  };
}

/*
 * Every chat request runs the functions below; they chain promises rather than await them
 * where they can (routeInference, forwardWithFailover, readRequestBody, the placement): each
 * pending async function is garbage of its own — its frame, its promise, an await's closures
 * — and there is one per request per layer.
 */

/**
 * The pipeline from a body already read (a route that decides first what to do with it
 * calls this). What is wrong with the request is thrown at once, not returned rejected.
 */
export function routeInference(deps: InferenceDeps, surface: InferenceSurface, exchange: Exchange, body: JsonBody): Promise<void> {
  const { stream } = surface.validate(body.value);
  exchange.rejectMisspelledParams(ROUTING_PARAMS);
  if (surface.pinnedNode === undefined) return routeTo(deps, surface, exchange, body, stream, null);
  return surface.pinnedNode(body.value).then((pinned) => routeTo(deps, surface, exchange, body, stream, pinned));
}

type Pinned = Awaited<ReturnType<NonNullable<InferenceSurface['pinnedNode']>>>;

/** The model resolved, the candidates chosen, then the attempts. */
function routeTo(
  deps: InferenceDeps,
  surface: InferenceSurface,
  exchange: Exchange,
  body: JsonBody,
  stream: boolean,
  pinned: Pinned,
): Promise<void> {
  const { config, fleet } = deps;
  const forcedNode = pinned?.node ?? exchange.queryParam('node');
  if (typeof body.value.model === 'string') exchange.requestedModel = body.value.model;
  const model = resolve(deps, surface, body.value.model, exchange.queryParam('require_all') === 'true');
  exchange.model = model;
  const healthy = fleet.healthyNodesFor(model);
  const serving = keepWhere(healthy, (node) => planKind(surface, fleet.surfacesOf(node.node)) !== null);
  if (serving.length === 0 && healthy.length > 0) throw notServed(surface, model);
  if (pinned !== null && !serving.some((n) => n.node === pinned.node)) throw pinned.whenGone;
  const translation = translationFor(surface, body, model, serving, fleet);
  const selected = selectCandidates({
    model,
    servingNodes: translation.nodes,
    circuitOpen: (id) => fleet.circuit(id).state === 'open',
    forcedNode,
  });
  const candidates = forcedNode === null ? deps.cooldowns.filter(selected) : selected;
  if (candidates.length === 0) {
    throw new GatewayError('no_eligible_node', `no healthy node serves model '${model}' right now`, {
      headers: { 'retry-after': String(config.retryAfterSecs) },
    });
  }
  const request: InferenceRequest = {
    exchange,
    model,
    stream,
    planFor: planner(surface, body.raw, body.value.model, model, exchange, fleet, translation.begun),
  };
  if (stream && forcedNode === null && (surface.name === 'chat' || surface.name === 'completions') && wantsResume(exchange, config)) {
    const needs = surface.needs;
    request.resume = new StreamResumer(deps, {
      exchange,
      model,
      surface: surface.name,
      needs,
      path: surface.upstreamPath,
      body: body.value,
    });
  }
  return forwardWithFailover(deps, request, candidates, { forced: forcedNode !== null, body: body.value });
}

/**
 * The plan with an observer, written out field by field: no `{ ...plan, onRecord }`, a
 * spread followed by a property its source lacks, on the hot path (docs/architecture.md).
 * `Required` makes a field added to UpstreamPlan, optional or not, a compile error here
 * until it is copied too.
 */
function observed(plan: UpstreamPlan, onRecord: NonNullable<UpstreamPlan['onRecord']>): UpstreamPlan {
  const { model, path, body, contentType, shape, answers, translate } = plan;
  return { model, path, body, contentType, shape, answers, translate, onRecord } satisfies Required<UpstreamPlan>;
}

/** A JSON object, or for an upload its bytes with the `model` form field read out. */
export function readRequestBody(exchange: Exchange, surface: InferenceSurface, config: InferenceDeps['config']): Promise<JsonBody> {
  if (surface.body !== 'multipart') return exchange.readJson(config.maxBodyBytes, config.requestTimeoutMs);
  return readUpload(exchange, config);
}

async function readUpload(exchange: Exchange, config: InferenceDeps['config']): Promise<JsonBody> {
  const contentType = exchange.req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\b/i.test(contentType)) {
    throw new GatewayError('invalid_request', 'the request must be multipart/form-data', { param: 'file' });
  }
  const raw = await exchange.readBody(config.maxBodyBytes, config.requestTimeoutMs);
  const model = await multipartModel(raw, contentType);
  return { value: model === undefined ? {} : { model }, raw };
}

/**
 * The request's translation, begun before any attempt when some node would need it, so what
 * cannot be translated is a 400 to the client — unless nodes that take the request as it is
 * remain, which are then the only candidates.
 */
function translationFor(
  surface: InferenceSurface,
  body: JsonBody,
  model: string,
  serving: readonly NodeState[],
  fleet: Pick<FleetCache, 'surfacesOf'>,
): { nodes: readonly NodeState[]; begun: RequestTranslation | null } {
  if (surface.translation === undefined) return { nodes: serving, begun: null };
  const translated = serving.filter((node) => planKind(surface, fleet.surfacesOf(node.node)) === 'translated');
  if (translated.length === 0) return { nodes: serving, begun: null };
  try {
    return { nodes: serving, begun: surface.translation.begin(body.value, model) };
  } catch (error) {
    const native = serving.filter((node) => !translated.includes(node));
    if (native.length === 0 || !(error instanceof GatewayError)) throw error;
    return { nodes: native, begun: null };
  }
}

/** How a node that serves these surfaces takes this one: as it is, translated, or not at all. */
function planKind(surface: InferenceSurface, served: ReadonlySet<ApiSurface>): 'native' | 'translated' | null {
  if (served.has(surface.needs)) return 'native';
  if (surface.translation !== undefined && served.has(surface.translation.via)) return 'translated';
  return null;
}

function notServed(surface: InferenceSurface, model: string): GatewayError {
  return new GatewayError('surface_not_served', `no node serving model '${model}' serves ${surface.upstreamPath}`, {
    param: 'model',
  });
}

/**
 * What goes to each node, built once per model id and kind of plan: the client's bytes with
 * only the model rewritten for a native node (MODEL_ALIASES: each node is sent the id it
 * lists); the translated body for a node that needs it. It holds the body's bytes and its
 * `model` value, not the parsed body: it lives until the answer is sent, and an agent's
 * body parses to tens of KB of strings and objects that every young-generation collection
 * in that time would copy.
 */
function planner(
  surface: InferenceSurface,
  raw: Buffer,
  requested: unknown,
  model: string,
  exchange: Exchange,
  fleet: Pick<FleetCache, 'surfacesOf' | 'modelFor'>,
  translation: RequestTranslation | null,
): (node: NodeState) => UpstreamPlan {
  // Native plans by the model id sent; nearly every request has one (no alias), so the first
  // is kept without a Map.
  let first: UpstreamPlan | null = null;
  let others: Map<string, UpstreamPlan> | null = null;
  const observe = surface.observe;
  return (node) => {
    const onRecord = observe === undefined ? undefined : (record: Record<string, unknown>) => observe(exchange, record, node.node);
    const sent = fleet.modelFor(model, node.node);
    if (translation === null || planKind(surface, fleet.surfacesOf(node.node)) !== 'translated') {
      let native = first?.model === sent ? first : others?.get(sent);
      if (native === undefined) {
        native = {
          model: sent,
          path: surface.upstreamPath,
          body: requested === sent ? raw : nativeBody(surface, raw, requested, sent, exchange),
          contentType: surface.body === 'multipart' ? (exchange.req.headers['content-type'] ?? '') : 'application/json',
          shape: surface.streams ?? OPENAI_SSE,
          answers: surface.answers ?? 'json',
          translate: null,
        };
        if (first === null) first = native;
        else {
          others ??= new Map();
          others.set(sent, native);
        }
      }
      return onRecord === undefined ? native : observed(native, onRecord);
    }
    const translated = translation.request(node);
    return {
      model: sent,
      path: translated.path,
      body: sent === model ? translated.body : withModel(translated.body, model, sent),
      contentType: 'application/json',
      shape: OPENAI_SSE,
      answers: 'json',
      translate: {
        answer: (upstream) => translation.answer(upstream),
        stream: () => translation.stream(),
        contentType: translation.streamContentType,
      },
      onRecord,
    };
  };
}

function nativeBody(surface: InferenceSurface, raw: Buffer, requested: unknown, model: string, exchange: Exchange): Buffer {
  if (surface.body === 'multipart') return withMultipartModel(raw, exchange.req.headers['content-type'] ?? '', model);
  return withModel(raw, requested, model);
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
    fleetAuthoritative: () => fleet.isAuthoritative(),
    retryAfterSecs: config.retryAfterSecs,
    isServedAlias: (name) => fleet.isServedAlias(name),
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
export function selectCandidates(input: SelectCandidatesInput): readonly NodeState[] {
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
  const closed = keepWhere(input.servingNodes, (n) => !input.circuitOpen(n.node));
  return closed.length > 0 ? closed : input.servingNodes;
}

/** `items.filter(keep)`, but `items` itself when every item is kept (the usual case: no copy per request). */
function keepWhere<T>(items: readonly T[], keep: (item: T) => boolean): readonly T[] {
  for (let i = 0; i < items.length; i++) {
    if (!keep(items[i])) return items.filter(keep);
  }
  return items;
}

function forwardWithFailover(
  deps: InferenceDeps,
  request: InferenceRequest,
  nodes: readonly NodeState[],
  { forced, body }: { forced: boolean; body: Record<string, unknown> },
): Promise<void> {
  const { config, metrics, leases, fleet } = deps;
  const { exchange, model } = request;
  const candidates = nodes.map((n) => n.node);
  const session = exchange.req.headers['x-session-id'];
  const sessionId = typeof session === 'string' && SANE_SESSION_ID.test(session) ? session : null;
  const sticky = config.stickySessions && sessionId !== null ? { key: `${model}:${sessionId}`, ttlMs: config.stickyTtlMs } : undefined;
  const key = config.routingStrategy === 'CACHE_AFFINITY' ? affinityKey({ sessionId, body }) : null;
  const affinity =
    config.routingStrategy === 'CACHE_AFFINITY'
      ? { key, rings: fleet.rings, lastNode: key === null ? null : (fleet.affinityHomes.get(key) ?? null) }
      : undefined;
  const placed = (placement: Placement): Placement => {
    // A model sent to an engine that did not have it loaded is loading there now: route the next requests knowing it.
    if (placement.kind === 'placed') {
      fleet.noteModelSent(placement.lease.node, model);
      // The conversation's prefix is cached where it went: its next turn starts there.
      if (key !== null) fleet.affinityHomes.note(key, placement.lease.node);
    }
    return placement;
  };
  const failover = withFailover({
    model,
    candidates,
    maxRetries: config.maxRetries,
    budgetMs: config.requestTimeoutMs,
    retryAfterSecs: config.retryAfterSecs,
    clock: deps.clock,
    random: deps.random,
    signal: exchange.clientGone,
    place: (choice) => {
      const placing = leases.acquire(
        () =>
          planAcquire(fleet.routingCandidates(choice.allowed, model), {
            strategy: config.routingStrategy,
            rotateKey: model,
            previousNode: choice.previousNode,
            random: deps.random,
            affinity,
          }),
        {
          // A forced node has a queue of its own: its waiters must not hold up the model's.
          group: forced ? `${model}@${candidates[0]}` : model,
          sticky: choice.index === 0 ? sticky : undefined,
          signal: exchange.clientGone,
          mayQueue: true,
          waits: exchange,
        },
      );
      return placing instanceof Promise ? placing.then(placed) : placed(placing);
    },
    attempt: (lease, attemptNumber) => runAttempt(deps, request, lease, attemptNumber),
    onRetry: (sameNode) => metrics.retries.inc({ kind: sameNode ? 'same_node' : 'failover' }),
    onRetryAfter: (node, untilMs) => deps.cooldowns.note(node, untilMs),
  });
  return failover.then(
    (outcome) => {
      if (outcome.aborted && !exchange.res.writableEnded) exchange.res.destroy();
      if (request.resume?.pending === true) return request.resume.run();
    },
    (error: unknown) => {
      if ((error as GatewayError).code === 'capacity_exhausted') metrics.capacityRejections.inc({ model });
      throw error;
    },
  );
}

/** STREAM_RESUME, or this request's `x-ai-lb-stream-resume: true|false`. */
function wantsResume(exchange: Exchange, config: InferenceDeps['config']): boolean {
  const header = exchange.req.headers['x-ai-lb-stream-resume'];
  if (header === undefined) return config.streamResume;
  const value = (Array.isArray(header) ? header[0] : header).trim().toLowerCase();
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new GatewayError('invalid_request', "header 'x-ai-lb-stream-resume' must be true or false", { param: 'x-ai-lb-stream-resume' });
}
