/**
 * The dashboard page's files, as text. Under tsx they are read from packages/shared/dashboard/
 * (static files, beside the sources); in the bundles `pnpm build` makes (scripts/build-bundles.ts) esbuild replaces
 * `globalThis.__AI_LB_DASHBOARD_ASSETS__` with the same files embedded, because a bundle
 * runs from dist/ alone (the Docker image holds no source tree).
 */
import { readFileSync } from 'node:fs';

declare global {
  /** Set at build time only (esbuild `define`); undefined under tsx. */
  var __AI_LB_DASHBOARD_ASSETS__: Record<string, string> | undefined;
}

/** Every file the page is made of, by name; the page references them under /dashboard/assets/. */
export const DASHBOARD_ASSET_NAMES = [
  'index.html',
  'dashboard.css',
  'dashboard.js',
  'charts.js',
  'dom.js',
  'format.js',
  'render-tables.js',
] as const;

export type DashboardAssetName = (typeof DASHBOARD_ASSET_NAMES)[number];

/** Reads the files from the source tree (tsx, tests, and the build script that embeds them). */
export function readDashboardAssets(): Record<DashboardAssetName, string> {
  const dir = new URL('../../dashboard/', import.meta.url);
  return Object.fromEntries(DASHBOARD_ASSET_NAMES.map((name) => [name, readFileSync(new URL(name, dir), 'utf8')])) as Record<
    DashboardAssetName,
    string
  >;
}

/** The embedded files in a bundle, else the source tree's. */
export function dashboardAssets(): Record<DashboardAssetName, string> {
  const embedded = globalThis.__AI_LB_DASHBOARD_ASSETS__;
  return (embedded as Record<DashboardAssetName, string> | undefined) ?? readDashboardAssets();
}
