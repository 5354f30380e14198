import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, RequestListener, ServerResponse } from 'node:http';
import { GATEWAY_MARK_HEADER, GatewayError, type Logger } from '@ai-lb/shared';
import { AttemptError } from '../forwarding/attempt-error.ts';
import { errorFormatForPath, type ErrorFormat } from './error-formats.ts';
import { Exchange, type ExchangeLimits } from './exchange.ts';
import type { RequestTracer } from '../observability/tracing.ts';

export type EndpointMethod = 'GET' | 'POST' | 'DELETE';
/** What an endpoint reads of the request: nothing, a JSON object, or a multipart form. */
export type BodyKind = 'none' | 'json' | 'multipart';

/** One row of the endpoint table (endpoints.ts). */
export interface Endpoint {
  method: EndpointMethod;
  /** A literal path, or one with `:name` segments that each match one path segment. */
  path: string;
  /** Needs a GATEWAY_API_KEYS key when keys are configured. */
  auth: boolean;
  body: BodyKind;
  /** The error format of the API this endpoint belongs to. */
  errors: ErrorFormat;
  /**
   * Set for inference surfaces: the request is routed to a node; it is counted by surface,
   * and its work is cancelled when the client leaves.
   */
  surface?: string;
  handle(exchange: Exchange, params: Readonly<Record<string, string>>): void | Promise<void>;
}

export interface RouterOptions {
  /** GATEWAY_API_KEYS; empty = open. */
  apiKeys: readonly string[];
  log: Logger;
  /** Told once per request of an inference surface when its response has ended or been cut (the metrics). */
  onFinished?: { recordRequest(exchange: Exchange): void };
  limits: ExchangeLimits;
  /** CORS_ORIGINS: origins browsers may call from ('*' for any); empty: no CORS headers at all. */
  corsOrigins?: readonly string[];
  /** Set when OTEL_EXPORTER_OTLP_ENDPOINT is: every routed request gets a trace. */
  tracer?: RequestTracer | null;
}

interface Route {
  /** Lowercased literal segments, with null where a `:name` parameter stands. */
  segments: (string | null)[];
  names: string[];
  byMethod: Map<string, Endpoint>;
  allow: string;
}

const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The node:http request listener for the whole endpoint table. One road for every request:
 * table lookup (exact path first, one Map lookup; then case and trailing-slash variants and
 * `:param` patterns), 404 and 405 (with Allow), the API key, the Exchange, and one error
 * renderer for whatever the handler throws.
 */
export function createRouter(endpoints: readonly Endpoint[], options: RouterOptions): Router {
  const { exact, patterns } = buildRoutes(endpoints);
  const keyDigests = options.apiKeys.map(digest);
  const { log, onFinished, limits } = options;
  const cors = corsPolicy(options.corsOrigins ?? []);
  const tracer = options.tracer ?? null;
  let active = 0;
  /** Routed requests in progress: shutdown tells their streams why they end. */
  const routed = new InFlight<Exchange>();

  const route = function route(req: IncomingMessage, res: ServerResponse): void {
    active++;
    const { path, search } = splitUrl(req.url ?? '/');
    const found = exact.get(path) ?? findRoute(exact, patterns, path);
    if (found === null || found === undefined) {
      const exchange = new Exchange(req, res, path, search, errorFormatForPath(path), null, limits);
      if (cors !== null) exchange.cors = cors.headers(req);
      res.once('close', () => active--);
      return exchange.fail(new GatewayError('route_not_found', `no route for ${req.method} ${path.slice(0, 200)}`), log);
    }
    const endpoint = found.route.byMethod.get(req.method === 'HEAD' ? 'GET' : (req.method ?? ''));
    if (endpoint === undefined && req.method === 'OPTIONS' && cors !== null) {
      const headers = cors.preflight(req, found.route.allow);
      if (headers !== null) {
        res.once('close', () => active--);
        res.writeHead(204, headers);
        return void res.end();
      }
    }
    if (endpoint === undefined) {
      const first = found.route.byMethod.values().next().value as Endpoint;
      const exchange = new Exchange(req, res, path, search, first.errors, null, limits);
      if (cors !== null) exchange.cors = cors.headers(req);
      res.once('close', () => active--);
      const message = `${req.method} is not allowed on ${path.slice(0, 200)}; use ${found.route.allow}`;
      return exchange.fail(new GatewayError('method_not_allowed', message, { headers: { allow: found.route.allow } }), log);
    }
    const exchange = new Exchange(req, res, path, search, endpoint.errors, endpoint.surface ?? null, limits);
    if (cors !== null) exchange.cors = cors.headers(req);
    const slot = endpoint.surface === undefined ? -1 : routed.add(exchange);
    if (slot !== -1 && tracer !== null) exchange.trace = tracer.startRequest(exchange);
    // One 'close' listener per request does every job: count it out, release what it held,
    // cancel its work when the client left before its response was sent in full, report it.
    // A response closes once: `on`, since `once` wraps the listener in garbage of its own.
    res.on('close', () => {
      active--;
      exchange.closed();
      if (slot === -1) return;
      routed.delete(slot);
      if (!res.writableFinished) exchange.clientGone.abort(new AttemptError('AI_LB_CLIENT_ABORT', 'the client closed the connection'));
      onFinished?.recordRequest(exchange);
    });
    if (endpoint.auth && keyDigests.length > 0 && !hasValidKey(req, keyDigests)) {
      return exchange.fail(missingOrInvalidKey(req), log);
    }
    try {
      const done = endpoint.handle(exchange, found.params);
      if (done instanceof Promise) done.catch((error) => exchange.fail(error, log));
    } catch (error) {
      exchange.fail(error, log);
    }
  };
  return Object.assign(route, { active: () => active, routed: (): Iterable<Exchange> => routed });
}

/**
 * Items in progress, each in a slot of its own until it is deleted; iterable. Not a `Set`:
 * with one, the requests it had held were kept by the young-generation collections and
 * promoted with everything they reach (the hot-path rule in docs/architecture.md) — V8 rebuilds a
 * set's table as entries come and go, and a table left in the old generation still points
 * at what it held until the next full collection. Here a deleted item's slot is cleared,
 * and the array only grows to the most items ever in progress at once.
 */
export class InFlight<T> {
  private readonly items: (T | undefined)[] = [];
  private readonly free: number[] = [];

  /** Holds `item`; returns its slot, for delete. */
  add(item: T): number {
    const slot = this.free.pop();
    if (slot === undefined) return this.items.push(item) - 1;
    this.items[slot] = item;
    return slot;
  }

  delete(slot: number): void {
    this.items[slot] = undefined;
    this.free.push(slot);
  }

  get size(): number {
    return this.items.length - this.free.length;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (const item of this.items) if (item !== undefined) yield item;
  }
}

/**
 * The request listener; how many requests it is answering right now and which of them are
 * routed upstream (graceful shutdown waits on the first and ends the second).
 */
export type Router = RequestListener & { active(): number; routed(): Iterable<Exchange> };

/** The headers a browser client gets, built once; null without CORS_ORIGINS. */
function corsPolicy(origins: readonly string[]) {
  if (origins.length === 0) return null;
  const any = origins.includes('*');
  const allowed = new Set(origins.map((o) => o.toLowerCase()));
  const expose = 'x-request-id, x-selected-model, x-routed-node, x-attempts, x-capacity-state, retry-after, x-ai-lb-token-count';
  const allowOrigin = (req: IncomingMessage): string | null => {
    const origin = req.headers.origin;
    if (typeof origin !== 'string') return null;
    return any ? '*' : allowed.has(origin.toLowerCase()) ? origin : null;
  };
  return {
    /** On every answer to an allowed origin: who may read it, and which of ai-lb's headers. */
    headers(req: IncomingMessage): OutgoingHttpHeaders | null {
      const origin = allowOrigin(req);
      if (origin === null) return null;
      return { 'access-control-allow-origin': origin, 'access-control-expose-headers': expose, vary: 'Origin' };
    },
    /** A preflight, answered without the API key (browsers send none with it). */
    preflight(req: IncomingMessage, allow: string): OutgoingHttpHeaders | null {
      const origin = allowOrigin(req);
      if (origin === null) return null;
      const requested = req.headers['access-control-request-headers'];
      return {
        [GATEWAY_MARK_HEADER]: '1',
        'access-control-allow-origin': origin,
        'access-control-allow-methods': allow,
        'access-control-allow-headers': typeof requested === 'string' ? requested.slice(0, 1000) : 'authorization, content-type, x-api-key',
        'access-control-max-age': '600',
        vary: 'Origin',
      };
    },
  };
}

function splitUrl(url: string): { path: string; search: string } {
  // An absolute URL, as a proxy sends it ("http://host/v1/models"), is read as its path.
  if (url.charCodeAt(0) !== 47 /* / */ && /^https?:\/\//i.test(url)) {
    try {
      const parsed = new URL(url);
      return { path: parsed.pathname, search: parsed.search.slice(1) };
    } catch {
      return { path: url, search: '' };
    }
  }
  const q = url.indexOf('?');
  return q === -1 ? { path: url, search: '' } : { path: url.slice(0, q), search: url.slice(q + 1) };
}

function buildRoutes(endpoints: readonly Endpoint[]): {
  exact: Map<string, { route: Route; params: Readonly<Record<string, string>> }>;
  patterns: Route[];
} {
  const byPath = new Map<string, Route>();
  for (const endpoint of endpoints) {
    const key = endpoint.path.toLowerCase();
    let route = byPath.get(key);
    if (route === undefined) {
      const parts = key.split('/').slice(1);
      route = {
        segments: parts.map((part) => (part.startsWith(':') ? null : part)),
        names: endpoint.path
          .split('/')
          .filter((part) => part.startsWith(':'))
          .map((part) => part.slice(1)),
        byMethod: new Map(),
        allow: '',
      };
      byPath.set(key, route);
    }
    if (route.byMethod.has(endpoint.method)) throw new Error(`endpoint table: ${endpoint.method} ${endpoint.path} is declared twice`);
    route.byMethod.set(endpoint.method, endpoint);
  }
  const exact = new Map<string, { route: Route; params: Readonly<Record<string, string>> }>();
  const patterns: Route[] = [];
  for (const [path, route] of byPath) {
    const methods = [...route.byMethod.keys()];
    route.allow = methods.includes('GET') ? [...methods, 'HEAD'].join(', ') : methods.join(', ');
    if (route.names.length === 0) exact.set(path, { route, params: NO_PARAMS });
    else patterns.push(route);
  }
  return { exact, patterns };
}

/** Case variants and a trailing slash reach the same endpoint; then the `:param` patterns. */
function findRoute(
  exact: Map<string, { route: Route; params: Readonly<Record<string, string>> }>,
  patterns: readonly Route[],
  path: string,
): { route: Route; params: Readonly<Record<string, string>> } | null {
  const normalized = path.length > 1 && path.endsWith('/') ? path.slice(0, -1).toLowerCase() : path.toLowerCase();
  const literal = exact.get(normalized);
  if (literal !== undefined) return literal;
  const raw = (path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path).split('/').slice(1);
  for (const route of patterns) {
    if (route.segments.length !== raw.length) continue;
    const params: Record<string, string> = {};
    let matched = true;
    let name = 0;
    for (let i = 0; i < raw.length && matched; i++) {
      const literalSegment = route.segments[i];
      if (literalSegment === null) {
        const value = decodeSegment(raw[i]);
        if (value === null || value === '') matched = false;
        else params[route.names[name++]] = value;
      } else if (literalSegment !== raw[i].toLowerCase()) {
        matched = false;
      }
    }
    if (matched) return { route, params };
  }
  return null;
}

function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/**
 * GATEWAY_API_KEYS: `Authorization: Bearer <key>` (OpenAI clients) or `x-api-key: <key>`
 * (Anthropic clients). Keys are compared as SHA-256 digests with timingSafeEqual: equal
 * lengths always, and every key is compared, so timing tells neither the key nor which matched.
 */
function hasValidKey(req: IncomingMessage, digests: readonly Buffer[]): boolean {
  const given = presentedKey(req);
  if (given === null) return false;
  const hash = digest(given);
  let ok = false;
  for (const candidate of digests) ok = timingSafeEqual(hash, candidate) || ok;
  return ok;
}

function presentedKey(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  const bearer = header === undefined ? null : /^Bearer\s+(.+)$/i.exec(header.trim());
  if (bearer !== null) return bearer[1];
  const apiKey = req.headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.trim() !== '' ? apiKey.trim() : null;
}

function missingOrInvalidKey(req: IncomingMessage): GatewayError {
  const message = presentedKey(req) === null ? 'missing API key: send Authorization: Bearer <key>' : 'invalid API key';
  return new GatewayError('invalid_api_key', message, { headers: { 'www-authenticate': 'Bearer' } });
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
