/**
 * Starts the real gateway as its own process, default config (LEAST_LOADED), on the
 * bench's upstreams:
 *  - memory store: `pnpm start` (packages/cli/src/start.ts), gateway and monitor in one
 *    process, the monitor scanning exactly the upstreams (SCAN_HOSTS=host:port,…);
 *  - redis store: `pnpm start:gateway` (packages/cli/src/gateway.ts), the gateway alone as
 *    replicas run, on the bench's redis-server under its own key prefix; the fleet is
 *    written by `seedFleet`.
 * Either way the bench waits until the gateway lists every upstream as eligible.
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONFIG_SCHEMA } from '@ai-lb/shared';
import { spawnTsProcess, type SpawnedProcess } from '@ai-lb/testkit';
import { BENCH_MODEL, type BenchFleet } from './start-bench-fleet.ts';
import { FAKE_UPSTREAM_MODELS, seedFleet } from './seed-fleet.ts';
import { STREAM_MODEL } from './stream-upstream.ts';

/** The entry per store, named as scripts/build-bundles.ts names their bundles. */
export const GATEWAY_ENTRIES = {
  start: fileURLToPath(new URL('../packages/cli/src/start.ts', import.meta.url)),
  gateway: fileURLToPath(new URL('../packages/cli/src/gateway.ts', import.meta.url)),
} as const;
export type GatewayEntry = keyof typeof GATEWAY_ENTRIES;

export function gatewayAvailable(): boolean {
  return Object.values(GATEWAY_ENTRIES).every((entry) => existsSync(entry));
}

export interface StartedGateway {
  baseUrl: string;
  process: SpawnedProcess<{ port: number }>;
}

export async function startGateway(
  store: 'memory' | 'redis',
  fleet: BenchFleet,
  /** bundles: the entries as plain-JS bundles (`--runtime js`), run without tsx. */
  /** env: settings on top of the defaults (`--baseline-env`). */
  options: {
    nodeArgs?: string[];
    bundles?: Partial<Record<GatewayEntry, string>>;
    memoryArgs?: string[];
    env?: Record<string, string>;
    /** Slots of every upstream (the seeded records; DEFAULT_MAXCONN for the monitor); 0 = uncapped. */
    maxconn?: number;
    /** The entry to run; by default `start` for memory state, `gateway` for Redis state. */
    entry?: GatewayEntry;
  } = {},
): Promise<StartedGateway> {
  const nodes = fleet.upstreams.map((u) => u.node);
  const seeded = fleet.upstreams.map((u) => ({ node: u.node, port: u.port, models: FAKE_UPSTREAM_MODELS }));
  if (fleet.stream) {
    const vllm = fleet.stream.surface === 'messages';
    seeded.push({
      node: fleet.stream.node,
      port: fleet.stream.port,
      models: [STREAM_MODEL],
      ...(vllm ? { kind: 'vllm' as const, surfaces: ['chat_completions', 'messages'] as const } : {}),
    });
  }
  const env: NodeJS.ProcessEnv = { ...defaultConfigEnv(), ...options.env, LOAD_BALANCER_PORT: '0', LOAD_BALANCER_HOST: '127.0.0.1' };
  const maxconn = options.maxconn ?? 0;
  if (maxconn > 0) env.DEFAULT_MAXCONN = String(maxconn);
  const entry: GatewayEntry = options.entry ?? (store === 'memory' ? 'start' : 'gateway');
  if (entry === 'start') {
    Object.assign(env, { SCAN_HOSTS: seeded.map((u) => u.node).join(','), MONITOR_PORT: '0' });
  }
  if (store === 'redis') {
    if (!fleet.redis) throw new Error('gateway-redis needs the bench redis-server');
    const prefix = `bench:${randomBytes(4).toString('hex')}:`;
    await seedFleet(fleet.redis.url, prefix, seeded, maxconn);
    Object.assign(env, { REDIS_URL: fleet.redis.url, REDIS_KEY_PREFIX: prefix });
  }
  const bundle = options.bundles?.[entry];
  const args = entry === 'start' ? (options.memoryArgs ?? []) : [];
  const proc = await spawnTsProcess<{ port: number }>(bundle ?? GATEWAY_ENTRIES[entry], args, {
    env,
    nodeArgs: options.nodeArgs,
    tsx: bundle === undefined,
    readyTimeoutMs: 30_000,
    // The access log writes a line per request: to a file, as a deployment's log goes,
    // so that no reader in the bench spends the measured machine's CPU on it.
    stderrToFile: { keepBytes: 64 * 1024 },
  });
  const baseUrl = `http://127.0.0.1:${proc.ready.port}`;
  try {
    await waitUntilEligible(baseUrl, BENCH_MODEL, nodes, 30_000);
    if (fleet.stream) await waitUntilEligible(baseUrl, STREAM_MODEL, [fleet.stream.node], 30_000);
  } catch (error) {
    await proc.stop();
    throw new Error(`gateway-${store}: ${(error as Error).message}; stderr: ${proc.stderr().slice(-2000)}`);
  }
  return { baseUrl, process: proc };
}

/**
 * The caller's environment minus every ai-lb setting, so a developer's shell (a
 * ROUTING_STRATEGY, GATEWAY_API_KEYS, REDIS_URL…) cannot change what the bench measures.
 */
function defaultConfigEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const field of Object.values(CONFIG_SCHEMA)) delete env[field.env];
  return env;
}

async function waitUntilEligible(baseUrl: string, model: string, nodes: readonly string[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${baseUrl}/v1/eligible_nodes?model=${model}`);
      last = await res.text();
      const listed = res.ok ? ((JSON.parse(last) as { data?: string[] }).data ?? []) : [];
      if (nodes.every((node) => listed.includes(node))) return;
    } catch (error) {
      last = String(error);
    }
    await sleep(100);
  }
  throw new Error(`upstreams ${nodes.join(',')} not eligible within ${timeoutMs} ms (last answer: ${last.slice(0, 300)})`);
}
