/**
 * Starts ai-lb the way the README's `pnpm start` does — one process, gateway and monitor,
 * in-memory state, the shipped V8 flags — scanning exactly the bench's engines; from the
 * `pnpm build` bundle of the same entry unless told to use tsx (runtime.ts). The only place
 * the bench knows the entry point: when the services move (packages/cli), change
 * SERVICES_ENTRY, SERVICE_ENTRIES.start (scripts/build-bundles.ts) and SERVICES_ARGS.
 */
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONFIG_SCHEMA } from '@ai-lb/shared';
import { spawnTsProcess, type SpawnedProcess } from '@ai-lb/testkit';
import { SHIPPED_V8, v8Flags } from '../bench-options.ts';

export const SERVICES_ENTRY = fileURLToPath(new URL('../../packages/cli/src/start.ts', import.meta.url));
const SERVICES_ARGS: string[] = [];

export interface RunningServices {
  baseUrl: string;
  process: SpawnedProcess<{ port: number; pid: number }>;
  stop(): Promise<void>;
}

/**
 * `env` on top of a clean environment (the caller's ai-lb variables dropped, so a shell's
 * ROUTING_STRATEGY cannot change what is measured). Resolves once every model is eligible
 * on its nodes.
 */
export async function startServices(options: {
  nodes: readonly string[];
  /** What must be eligible before the services count as up: each model on its nodes. */
  models: readonly { model: string; nodes: readonly string[] }[];
  env: Record<string, string>;
  /** The services bundled (`pnpm build`'s gateway.mjs, what the image runs), else the source through tsx. */
  bundle?: string | null;
  readyTimeoutMs?: number;
}): Promise<RunningServices> {
  const env: NodeJS.ProcessEnv = {
    ...cleanEnv(),
    LOAD_BALANCER_PORT: '0',
    LOAD_BALANCER_HOST: '127.0.0.1',
    MONITOR_PORT: '0',
    SCAN_HOSTS: options.nodes.join(','),
    LOG_LEVEL: 'warn',
    SHUTDOWN_GRACE_SECS: '0',
    ...options.env,
  };
  const timeoutMs = options.readyTimeoutMs ?? 60_000;
  const bundle = options.bundle ?? null;
  const proc = await spawnTsProcess<{ port: number; pid: number }>(bundle ?? SERVICES_ENTRY, SERVICES_ARGS, {
    env,
    nodeArgs: v8Flags(SHIPPED_V8),
    readyTimeoutMs: timeoutMs,
    tsx: bundle === null,
  });
  const baseUrl = `http://127.0.0.1:${proc.ready.port}`;
  try {
    for (const { model, nodes } of options.models) await waitUntilEligible(baseUrl, model, nodes, timeoutMs);
  } catch (error) {
    await proc.stop();
    throw new Error(`${(error as Error).message}; stderr: ${proc.stderr().slice(-1500)}`);
  }
  return { baseUrl, process: proc, stop: () => proc.stop() };
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const field of Object.values(CONFIG_SCHEMA)) delete env[field.env];
  return env;
}

async function waitUntilEligible(baseUrl: string, model: string, nodes: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${baseUrl}/v1/eligible_nodes?model=${encodeURIComponent(model)}`);
      last = await res.text();
      const listed = res.ok ? ((JSON.parse(last) as { data?: string[] }).data ?? []) : [];
      if (nodes.every((node) => listed.includes(node))) return;
    } catch (error) {
      last = String(error);
    }
    await sleep(100);
  }
  throw new Error(`model ${model}: nodes ${nodes.join(',')} not eligible within ${timeoutMs} ms (last: ${last.slice(0, 400)})`);
}
