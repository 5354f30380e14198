/**
 * The dashboard page and its assets as HTTP answers, for any server (the gateway's router,
 * the monitor's express app): the caller passes the request path (and If-None-Match) and
 * writes what comes back. Only the fixed file list is served, looked up by exact path, so
 * no request path ever reaches the file system.
 */
import { createHash } from 'node:crypto';
import { DASHBOARD_ASSET_NAMES, dashboardAssets, type DashboardAssetName } from './dashboard-assets.ts';

export const DASHBOARD_PATH = '/dashboard';
export const DASHBOARD_ASSETS_PREFIX = '/dashboard/assets/';

/**
 * The page runs only its own files: no inline script or style, no other origin, no
 * framing, no form posts. Fetches go to the same origin (the state endpoint).
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers for every dashboard answer, the state endpoint's JSON included. */
export const DASHBOARD_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** Headers for the state endpoint's JSON: never cached (it is live data, possibly behind a key). */
export const DASHBOARD_STATE_HEADERS: Readonly<Record<string, string>> = {
  ...DASHBOARD_SECURITY_HEADERS,
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
};

export interface DashboardResponse {
  status: 200 | 304;
  headers: Record<string, string>;
  /** Empty for 304. */
  body: Buffer;
}

interface Prepared {
  body: Buffer;
  etag: string;
  contentType: string;
}

const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

let prepared: Map<string, Prepared> | undefined;

function prepare(): Map<string, Prepared> {
  const assets = dashboardAssets();
  const byPath = new Map<string, Prepared>();
  for (const name of DASHBOARD_ASSET_NAMES) {
    const body = Buffer.from(assets[name as DashboardAssetName], 'utf8');
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    const entry = { body, etag, contentType: CONTENT_TYPES[name.slice(name.lastIndexOf('.') + 1)] };
    if (name === 'index.html') {
      byPath.set(DASHBOARD_PATH, entry);
      byPath.set(`${DASHBOARD_PATH}/`, entry);
    } else byPath.set(DASHBOARD_ASSETS_PREFIX + name, entry);
  }
  return byPath;
}

/**
 * The answer for `path` (query string ignored), or null when the path is not one of the
 * dashboard's files (the caller answers 404, or routes the state endpoint itself).
 * Files are revalidated on each load (`no-cache` + ETag, a 304 costs no body): their names
 * carry no version, and a page and its modules from two releases must not mix.
 */
export function serveDashboard(path: string, ifNoneMatch?: string | null): DashboardResponse | null {
  prepared ??= prepare();
  const query = path.indexOf('?');
  const entry = prepared.get(query === -1 ? path : path.slice(0, query));
  if (!entry) return null;
  const headers: Record<string, string> = {
    ...DASHBOARD_SECURITY_HEADERS,
    'content-type': entry.contentType,
    'cache-control': 'no-cache',
    etag: entry.etag,
  };
  if (ifNoneMatch && etagMatches(ifNoneMatch, entry.etag)) return { status: 304, headers, body: Buffer.alloc(0) };
  headers['content-length'] = String(entry.body.length);
  return { status: 200, headers, body: entry.body };
}

function etagMatches(header: string, etag: string): boolean {
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === etag || t === '*');
}
