/**
 * The five things the bench puts load on. Each is its own process (except `direct`, which
 * is the first upstream itself), so CPU and RSS can be read per forwarding process.
 */
import { fileURLToPath } from 'node:url';
import { spawnTsProcess } from '@ai-lb/testkit';
import type { BundledEntry } from './build-js-bundles.ts';
import type { BenchFleet } from './start-bench-fleet.ts';
import { startGateway } from './start-gateway.ts';

export const TARGET_NAMES = ['direct', 'node-floor', 'hpm', 'gateway-memory', 'gateway-redis'] as const;
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
  const store = name === 'gateway-memory' ? 'memory' : 'redis';
  const gateway = await startGateway(store, fleet, { nodeArgs: options.nodeArgs, bundles: options.bundles });
  return {
    name,
    baseUrl: gateway.baseUrl,
    pid: gateway.process.pid,
    auxPids: store === 'redis' && fleet.redis ? [fleet.redis.pid] : [],
    stop: () => gateway.process.stop(),
  };
}
