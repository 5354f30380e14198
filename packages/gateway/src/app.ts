import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { GATEWAY_MARK_HEADER } from '@ai-lb/shared';
import type { GatewayContext } from './gateway-context.ts';
import { errorMiddleware, methodNotAllowed, notFound } from './http/error-middleware.ts';
import { requireApiKey } from './http/require-api-key.ts';
import { chatCompletionsRoute } from './routes/chat-completions.ts';
import { eligibleNodesRoute } from './routes/eligible-nodes.ts';
import { embeddingsRoute } from './routes/embeddings.ts';
import { healthRoute } from './routes/health.ts';
import { metricsRoute } from './routes/metrics-endpoint.ts';
import { modelRoute, modelsRoute } from './routes/models.ts';
import { nodesRoute } from './routes/nodes.ts';

/** Express wiring only: which handler answers which path. No logic lives here. */
export function createApp(ctx: GatewayContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(markResponse);
  // /health and /metrics stay open for probes and scrapers; every /v1 route needs the key.
  if (ctx.config.gatewayApiKeys.length > 0) app.use('/v1', requireApiKey(ctx.config.gatewayApiKeys));

  for (const [path, handler] of inferenceRoutes(ctx)) route(app, 'post', path, handler);
  route(app, 'get', '/v1/models', modelsRoute(ctx));
  route(app, 'get', '/v1/models/:id', modelRoute(ctx));
  route(app, 'get', '/v1/nodes', nodesRoute(ctx));
  route(app, 'get', '/v1/eligible_nodes', eligibleNodesRoute(ctx));
  route(app, 'get', '/health', healthRoute(ctx));
  route(app, 'get', '/metrics', metricsRoute(ctx));

  app.use(notFound);
  app.use(errorMiddleware(ctx.log));
  return app;
}

type Handler = (req: Request, res: Response) => unknown;

/** The two routes every inference request takes; built once per app. */
function inferenceRoutes(ctx: GatewayContext): Map<string, Handler> {
  let routes = builtRoutes.get(ctx);
  if (routes === undefined) {
    routes = new Map<string, Handler>([
      ['/v1/chat/completions', chatCompletionsRoute(ctx)],
      ['/v1/embeddings', embeddingsRoute(ctx)],
    ]);
    builtRoutes.set(ctx, routes);
  }
  return routes;
}
const builtRoutes = new WeakMap<GatewayContext, Map<string, Handler>>();

/**
 * The node:http 'request' listener: `app` itself, except for a POST to exactly
 * /v1/chat/completions or /v1/embeddings. Those two carry nearly all the traffic, and
 * express's router (layer matching, next() chains, parseurl) measured ≈ 7 % of the
 * gateway's CPU per request (issue 6, docs/performance.md), so they are dispatched here
 * straight to the same handlers, with the same API key check and error middleware.
 * Any other URL (query strings, trailing slashes, case variants), method or path goes
 * through express unchanged.
 */
export function createRequestListener(ctx: GatewayContext, app: Express): RequestListener {
  const routes = inferenceRoutes(ctx);
  const checkKey = ctx.config.gatewayApiKeys.length > 0 ? requireApiKey(ctx.config.gatewayApiKeys) : null;
  const renderError = errorMiddleware(ctx.log);
  const ignore = () => undefined;
  return function dispatch(incoming: IncomingMessage, outgoing: ServerResponse): void {
    const handler = incoming.method === 'POST' && incoming.url !== undefined ? routes.get(incoming.url) : undefined;
    if (handler === undefined) return void app(incoming, outgoing);
    // The handlers use node's own request/response API only (express's req.query just for
    // a URL with a query string, which never takes this road), so express's per-request
    // setup — two Object.setPrototypeOf calls, which V8 makes costly — is skipped here.
    const req = incoming as Request;
    const res = outgoing as Response;
    // No setHeader here: the gateway mark goes out with the rest of the head in one
    // writeHead (run-attempt.ts), or with an error envelope (error-middleware.ts).
    const fail = (error: unknown) => renderError(error, req, res, ignore);
    const run = () => {
      try {
        const done = handler(req, res);
        if (done instanceof Promise) done.catch(fail);
      } catch (error) {
        fail(error);
      }
    };
    if (checkKey === null) return run();
    checkKey(req, res, (error?: unknown) => (error === undefined ? run() : fail(error)));
  };
}

/** The route for its method, and 405 (with Allow) for any other method on the same path. */
function route(app: Express, method: 'get' | 'post', path: string, handler: Handler): void {
  app[method](path, handler);
  app.all(path, methodNotAllowed(method === 'get' ? 'GET, HEAD' : 'POST'));
}

/** Every response, errors and 404s included, says it comes from a gateway: the monitor skips such targets. */
function markResponse(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader(GATEWAY_MARK_HEADER, '1');
  next();
}
