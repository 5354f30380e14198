import type { NextFunction, Request, Response } from 'express';
import { GatewayError, GATEWAY_MARK_HEADER } from '@ai-lb/shared';
import type { Logger } from '../logger.ts';

/**
 * The only renderer of the OpenAI error envelope. A GatewayError is rendered as it says;
 * anything else is a bug of ours: a 500 whose cause goes to the log, never to the client.
 */
export function errorMiddleware(log: Logger) {
  return function renderError(error: unknown, req: Request, res: Response, _next: NextFunction): void {
    const gatewayError = toGatewayError(error, req, log);
    if (res.headersSent) {
      // Too late for an envelope (a stream already started): cut the connection so the
      // client sees a failure rather than a truncated success.
      res.destroy();
      return;
    }
    sendError(res, gatewayError);
  };
}

export function sendError(res: Response, error: GatewayError): void {
  const body = JSON.stringify(error.toEnvelope());
  res.statusCode = error.status;
  res.setHeader(GATEWAY_MARK_HEADER, '1');
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}

function toGatewayError(error: unknown, req: Request, log: Logger): GatewayError {
  if (error instanceof GatewayError) return error;
  // Errors thrown by express/body internals carry an HTTP status (e.g. a malformed URL).
  const status = (error as { status?: unknown; statusCode?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new GatewayError('invalid_request', 'the request could not be parsed', { status, cause: error });
  }
  log.error('unhandled error', {
    method: req.method,
    // req.path is express's: undefined for requests of the fast path (app.ts createRequestListener).
    path: req.path ?? req.url,
    requestId: req.res?.getHeader('x-request-id'),
    error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    stack: error instanceof Error ? error.stack : undefined,
  });
  return new GatewayError('internal_error', 'internal error in the ai-lb gateway', { cause: error });
}

/** Unknown routes: 404 in the envelope, like every other error. */
export function notFound(req: Request, _res: Response, next: NextFunction): void {
  next(new GatewayError('route_not_found', `no route for ${req.method} ${req.path.slice(0, 200)}`));
}

/** A known path with the wrong method. */
export function methodNotAllowed(allowed: string) {
  return function rejectMethod(req: Request, res: Response, next: NextFunction): void {
    res.setHeader('allow', allowed);
    next(new GatewayError('method_not_allowed', `${req.method} is not allowed on ${req.path}; use ${allowed}`));
  };
}
