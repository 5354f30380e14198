/** The dashboard handler on a real HTTP server (port 0, loopback), as the gateway and monitor mount it. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { createBearerCheck } from './bearer-check.ts';
import { buildDashboardState } from './build-dashboard-state.ts';
import { createDashboardHandler, type DashboardHandlerOptions } from './dashboard-handler.ts';
import { DASHBOARD_CSP } from './serve-dashboard.ts';

let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function serve(options: Partial<DashboardHandlerOptions> = {}): Promise<string> {
  const handler = createDashboardHandler({ state: () => buildDashboardState({ service: 'monitor', nowMs: 1, nodes: [] }), ...options });
  server = createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(418).end('not the dashboard');
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

describe('createDashboardHandler', () => {
  test('serves the page and its assets, and leaves every other path to the caller', async () => {
    const url = await serve();
    const page = await fetch(`${url}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(await page.text()).toContain('/dashboard/assets/dashboard.js');
    expect((await fetch(`${url}/dashboard/assets/charts.js`)).headers.get('content-type')).toContain('text/javascript');
    expect((await fetch(`${url}/metrics`)).status).toBe(418);
    expect((await fetch(`${url}/dashboards`)).status).toBe(418);
    const unknown = await fetch(`${url}/dashboard/nope`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('route_not_found');
  });

  test('the state is JSON, never cached; HEAD has no body; other methods get 405 with Allow', async () => {
    const url = await serve();
    const state = await fetch(`${url}/dashboard/state`);
    expect(state.status).toBe(200);
    expect(state.headers.get('cache-control')).toBe('no-store');
    expect(((await state.json()) as { service: string }).service).toBe('monitor');
    const head = await fetch(`${url}/dashboard/state`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const post = await fetch(`${url}/dashboard/state`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(((await post.json()) as { error: { code: string } }).error.code).toBe('method_not_allowed');
  });

  test('with keys: the page stays open, the state needs a bearer key (401 with WWW-Authenticate otherwise)', async () => {
    const url = await serve({ authorize: createBearerCheck(['k1', 'k2']) });
    expect((await fetch(`${url}/dashboard`)).status).toBe(200);
    for (const authorization of [undefined, 'Bearer nope', 'k1', 'Basic azE6']) {
      const answer = await fetch(`${url}/dashboard/state`, { headers: authorization ? { authorization } : {} });
      expect(answer.status, String(authorization)).toBe(401);
      expect(answer.headers.get('www-authenticate')).toBe('Bearer');
      expect(((await answer.json()) as { error: { code: string; type: string } }).error).toMatchObject({
        code: 'invalid_api_key',
        type: 'invalid_request_error',
      });
    }
    expect((await fetch(`${url}/dashboard/state`, { headers: { authorization: 'Bearer k2' } })).status).toBe(200);
    expect((await fetch(`${url}/dashboard/state`, { headers: { authorization: 'bearer  k1 ' } })).status).toBe(200);
  });

  test('a state that cannot be read is a 503 in the error envelope, reported to onError, never a crash', async () => {
    const errors: unknown[] = [];
    const url = await serve({
      state: () => Promise.reject(new Error('redis down')),
      onError: (error) => errors.push(error),
    });
    const answer = await fetch(`${url}/dashboard/state`);
    expect(answer.status).toBe(503);
    const body = (await answer.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('state_unavailable');
    expect(body.error.message).not.toContain('redis down');
    expect(errors).toHaveLength(1);
  });

  test('no keys configured: no check', () => {
    expect(createBearerCheck([])).toBeUndefined();
  });
});
