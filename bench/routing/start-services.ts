/**
 * Starts ai-lb the way the README's `pnpm start` does — one process, gateway and monitor,
 * in-memory state — scanning exactly the bench's engines. The only place the bench knows
 * the entry point: when the services move (packages/cli), change SERVICES_ENTRY and args.
 */
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONFIG_SCHEMA } from '@ai-lb/shared';
import { spawnTsProcess, type SpawnedProcess } from '@ai-lb/testkit';
import { SHIPPED_V8, v8Flags } from '../bench-options.ts';

export const SERVICES_ENTRY = fileURLToPath(new URL('../../packages/gateway/src/main.ts', import.meta.url));
const SERVICES_ARGS = ['--with-monitor'];

export interface RunningServices {
  baseUrl: string;
  process: SpawnedProcess<{ port: number; pid: number }>;
  stop(): Promise<void>;
}

/**
 * `env` on top of a clean environment (the caller's ai-lb variables dropped, so a shell's
 * ROUTING_STRATEGY cannot change what is measured). Resolves once every model has every
 * node eligible.
 */
export async function startServices(options: {
  nodes: readonly string[];
  models: readonly string[];
  env: Record<string, string>;
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
  const proc = await spawnTsProcess<{ port: number; pid: number }>(SERVICES_ENTRY, SERVICES_ARGS, {
    env,
    nodeArgs: v8Flags(SHIPPED_V8),
    readyTimeoutMs: timeoutMs,
  });
  const baseUrl = `http://127.0.0.1:${proc.ready.port}`;
  try {
    for (const model of options.models) await waitUntilEligible(baseUrl, model, options.nodes, timeoutMs);
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
  throw new Error(`model ${model}: nodes ${nodes.join(',')} not eligible within ${timeoutMs} ms (last: ${last.slice(0, 200)})`);
}
