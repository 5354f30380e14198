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

  route(app, 'post', '/v1/chat/completions', chatCompletionsRoute(ctx));
  route(app, 'post', '/v1/embeddings', embeddingsRoute(ctx));
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
