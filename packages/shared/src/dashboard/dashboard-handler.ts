/**
 * The dashboard's routes as one plain Node handler, so the gateway's router and the
 * monitor's express app serve the page the same way: GET /dashboard (and its assets) is
 * open, because the page holds no data; GET /dashboard/state is the data, behind the API
 * key when one is configured. Returns false for any other path (the caller goes on).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../errors.ts';
import { DASHBOARD_STATE_PATH, type DashboardState } from './dashboard-state.ts';
import { DASHBOARD_PATH, DASHBOARD_SECURITY_HEADERS, DASHBOARD_STATE_HEADERS, serveDashboard } from './serve-dashboard.ts';

export interface DashboardHandlerOptions {
  /** Assembles the current state (reads the fleet and the store): called once per poll. */
  state(): DashboardState | Promise<DashboardState>;
  /**
   * Checks the Authorization header of a state request; absent when no key is configured.
   * The caller passes the same check its API uses (GATEWAY_API_KEYS), so there is one rule.
   */
  authorize?: (authorization: string | undefined) => boolean;
  /** A state that could not be assembled (the answer is 503). */
  onError?: (error: unknown) => void;
}

export type DashboardHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export function createDashboardHandler(options: DashboardHandlerOptions): DashboardHandler {
  return function handleDashboard(req, res) {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    if (path !== DASHBOARD_PATH && !path.startsWith(`${DASHBOARD_PATH}/`)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(
        res,
        new GatewayError('method_not_allowed', `${req.method} ${path}: the dashboard answers GET only`, {
          headers: { allow: 'GET, HEAD' },
        }),
      );
      return true;
    }
    if (path === DASHBOARD_STATE_PATH) {
      void sendState(req, res, options);
      return true;
    }
    const answer = serveDashboard(path, req.headers['if-none-match']);
    if (!answer) {
      sendError(res, new GatewayError('route_not_found', `${path} is not part of the dashboard: open ${DASHBOARD_PATH}`));
      return true;
    }
    res.writeHead(answer.status, answer.headers);
    res.end(req.method === 'HEAD' ? undefined : answer.body);
    return true;
  };
}

async function sendState(req: IncomingMessage, res: ServerResponse, options: DashboardHandlerOptions): Promise<void> {
  if (options.authorize && !options.authorize(req.headers.authorization)) {
    sendError(
      res,
      new GatewayError('invalid_api_key', 'the dashboard data needs an API key: send Authorization: Bearer <key>', {
        headers: { 'www-authenticate': 'Bearer' },
      }),
    );
    return;
  }
  let body: string;
  try {
    body = JSON.stringify(await options.state());
  } catch (error) {
    options.onError?.(error);
    sendError(res, new GatewayError('state_unavailable', 'the fleet state cannot be read right now'));
    return;
  }
  if (res.destroyed) return;
  res.writeHead(200, { ...DASHBOARD_STATE_HEADERS, 'content-length': String(Buffer.byteLength(body)) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function sendError(res: ServerResponse, error: GatewayError): void {
  if (res.destroyed || res.headersSent) return;
  const body = JSON.stringify(error.toEnvelope());
  res.writeHead(error.status, {
    ...DASHBOARD_SECURITY_HEADERS,
    ...error.headers,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(body);
}
