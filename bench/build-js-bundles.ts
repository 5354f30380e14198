/**
 * `--runtime js` (the default): the forwarders the bench measures — the gateway (as
 * `pnpm start` for gateway-memory, as `pnpm start:gateway` for gateway-redis), the node
 * floor and the http-proxy-middleware forwarder — run as plain-JavaScript bundles built by
 * the same `buildBundles` as `pnpm build` (what the Docker image runs), not through the tsx
 * loader, which keeps a thread of its own in every process (docs/performance.md). Every
 * forwarder alike, so the comparison stays fair. `--runtime tsx` measures them as `pnpm
 * start` runs them.
 */
import { fileURLToPath } from 'node:url';
import { buildBundles, SERVICE_ENTRIES } from '../scripts/build-bundles.ts';

export type BundledEntry = 'start' | 'gateway' | 'node-floor' | 'hpm' | 'stream-floor';

const SOURCES: Record<BundledEntry, string> = {
  start: SERVICE_ENTRIES.start,
  gateway: SERVICE_ENTRIES.gateway,
  'node-floor': fileURLToPath(new URL('./node-floor.ts', import.meta.url)),
  hpm: fileURLToPath(new URL('./hpm-forwarder.ts', import.meta.url)),
  'stream-floor': fileURLToPath(new URL('./stream-floor.ts', import.meta.url)),
};

export function buildJsBundles(outDir: string): Promise<Record<BundledEntry, string>> {
  return buildBundles(SOURCES, outDir);
}
