/**
 * The five things the bench puts load on. Each is its own process (except `direct`, which
 * is the first upstream itself), so CPU and RSS can be read per forwarding process.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnTsProcess } from '@ai-lb/testkit';
import type { BundledEntry } from './build-js-bundles.ts';
import type { BenchFleet } from './start-bench-fleet.ts';
import { startGateway } from './start-gateway.ts';

export const TARGET_NAMES = [
  'direct',
  'node-floor',
  'hpm',
  'gateway-memory',
  'gateway-redis',
  'baseline-memory',
  'baseline-redis',
] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

export interface BenchTarget {
  name: TargetName;
  baseUrl: string;
  /** The forwarding process (CPU per request, RSS); null for direct, which forwards nothing. */
  pid: number | null;
  /** Other processes the target makes busy per request (redis-server for gateway-redis). */
  auxPids: number[];
  stop(): Promise<void>;
}

const ENTRIES = {
  'node-floor': fileURLToPath(new URL('./node-floor.ts', import.meta.url)),
  hpm: fileURLToPath(new URL('./hpm-forwarder.ts', import.meta.url)),
};

export interface StartTargetOptions {
  nodeArgs?: string[];
  /** `--runtime js`: the bundles to run with plain node instead of the .ts entries under tsx. */
  bundles?: Record<BundledEntry, string>;
  /** `--baseline DIR`: an earlier build's dist/ for the baseline-* targets. */
  baselineDir?: string;
  /** `--baseline-env`: settings of the baseline-* targets. */
  baselineEnv?: Record<string, string>;
  /** `--maxconn`: every upstream capped at this many slots; 0 = uncapped. */
  maxconn?: number;
}

export async function startTarget(name: TargetName, fleet: BenchFleet, options: StartTargetOptions = {}): Promise<BenchTarget> {
  if (name === 'direct') {
    return { name, baseUrl: fleet.upstreams[0].url, pid: null, auxPids: [], stop: async () => undefined };
  }
  if (name === 'node-floor' || name === 'hpm') {
    const upstreams = fleet.upstreams.map((u) => u.node).join(',');
    const entry = options.bundles?.[name] ?? ENTRIES[name];
    const proc = await spawnTsProcess<{ port: number }>(entry, ['--upstreams', upstreams], {
      nodeArgs: options.nodeArgs,
      tsx: !options.bundles,
    });
    return { name, baseUrl: `http://127.0.0.1:${proc.ready.port}`, pid: proc.pid, auxPids: [], stop: () => proc.stop() };
  }
  const store = name === 'gateway-memory' || name === 'baseline-memory' ? 'memory' : 'redis';
  const isBaseline = name.startsWith('baseline-');
  // The baseline is an earlier build (--baseline DIR), or this build with other settings (--baseline-env).
  const baseline = isBaseline && options.baselineDir !== undefined ? baselineBundles(options.baselineDir) : undefined;
  const gateway = await startGateway(store, fleet, {
    nodeArgs: options.nodeArgs,
    bundles: baseline?.bundles ?? options.bundles,
    memoryArgs: baseline?.memoryArgs,
    env: isBaseline ? options.baselineEnv : undefined,
    maxconn: options.maxconn,
  });
  return {
    name,
    baseUrl: gateway.baseUrl,
    pid: gateway.process.pid,
    auxPids: store === 'redis' && fleet.redis ? [fleet.redis.pid] : [],
    stop: () => gateway.process.stop(),
  };
}

/**
 * An earlier build's entry points: dist/start.mjs for `pnpm start` where the build has one;
 * builds from before the cli package ran it as dist/gateway.mjs --with-monitor.
 */
function baselineBundles(dir: string | undefined): { bundles: Partial<Record<'start' | 'gateway', string>>; memoryArgs: string[] } {
  if (dir === undefined) throw new Error('baseline targets need --baseline DIR');
  const gateway = join(dir, 'gateway.mjs');
  if (!existsSync(gateway)) throw new Error(`--baseline ${dir}: no gateway.mjs there (run pnpm build in that checkout)`);
  const start = join(dir, 'start.mjs');
  return existsSync(start)
    ? { bundles: { start, gateway }, memoryArgs: [] }
    : { bundles: { start: gateway, gateway }, memoryArgs: ['--with-monitor'] };
}
