import { describe, expect, it } from 'vitest';
import { DASHBOARD_ASSET_NAMES, readDashboardAssets } from './dashboard-assets.ts';
import { DASHBOARD_STATE_VERSION } from './dashboard-state.ts';
import { DASHBOARD_CSP, DASHBOARD_STATE_HEADERS, serveDashboard } from './serve-dashboard.ts';

describe('serveDashboard', () => {
  it('serves the page at /dashboard and /dashboard/ as HTML with a strict CSP and revalidation', () => {
    for (const path of ['/dashboard', '/dashboard/', '/dashboard?x=1']) {
      const answer = serveDashboard(path)!;
      expect(answer.status).toBe(200);
      expect(answer.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(answer.headers['cache-control']).toBe('no-cache');
      expect(answer.headers['content-security-policy']).toBe(DASHBOARD_CSP);
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect(answer.headers['content-length']).toBe(String(answer.body.length));
      expect(answer.body.toString('utf8')).toContain('<title>ai-lb fleet</title>');
    }
  });

  it('the CSP allows no inline script or style and no other origin', () => {
    expect(DASHBOARD_CSP).toContain("default-src 'none'");
    expect(DASHBOARD_CSP).toContain("script-src 'self'");
    expect(DASHBOARD_CSP).not.toMatch(/unsafe-inline|unsafe-eval|https?:|\*/);
    // ...and the page needs none: no inline <script> body, no style attribute, no on* handler.
    const html = readDashboardAssets()['index.html'];
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=|\son[a-z]+=/i);
  });

  it('serves every asset with its content type, and every file the page references exists', () => {
    const types: Record<string, string> = { js: 'text/javascript', css: 'text/css' };
    for (const name of DASHBOARD_ASSET_NAMES.filter((n) => n !== 'index.html')) {
      const answer = serveDashboard(`/dashboard/assets/${name}`)!;
      expect(answer.status, name).toBe(200);
      expect(answer.headers['content-type']).toContain(types[name.split('.').pop()!]);
    }
    const assets = readDashboardAssets();
    const referenced = [
      ...assets['index.html'].matchAll(/(?:href|src)="\/dashboard\/assets\/([^"]+)"/g),
      ...Object.values(assets).flatMap((text) => [...text.matchAll(/from '\.\/([^']+)'/g)]),
    ].map((m) => m[1]);
    expect(referenced.length).toBeGreaterThan(4);
    for (const name of referenced) expect(DASHBOARD_ASSET_NAMES as readonly string[]).toContain(name);
  });

  it('the page reads the contract version the server writes', () => {
    expect(readDashboardAssets()['dashboard.js']).toContain(`const STATE_VERSION = ${DASHBOARD_STATE_VERSION};`);
  });

  it('answers 304 without a body to a matching If-None-Match', () => {
    const first = serveDashboard('/dashboard/assets/dashboard.js')!;
    const etag = first.headers.etag;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = serveDashboard('/dashboard/assets/dashboard.js', `W/${etag}, "other"`)!;
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(serveDashboard('/dashboard/assets/dashboard.js', '"stale"')!.status).toBe(200);
  });

  it('anything else is not its business: null (traversal, the state endpoint, unknown files)', () => {
    for (const path of [
      '/dashboard/assets/../../../../etc/passwd',
      '/dashboard/assets/%2e%2e/index.ts',
      '/dashboard/assets/',
      '/dashboard/state',
      '/dashboard/index.html',
      '/dashboardx',
      '/',
    ]) {
      expect(serveDashboard(path), path).toBeNull();
    }
  });

  it('the state endpoint is never cached', () => {
    expect(DASHBOARD_STATE_HEADERS['cache-control']).toBe('no-store');
    expect(DASHBOARD_STATE_HEADERS['content-type']).toBe('application/json; charset=utf-8');
  });
});
