import { fileURLToPath } from 'node:url';
import { spawnTsProcess, type SpawnedProcess } from './spawn-process.ts';
import type { FakeServerStats } from './fake-llm-server.ts';
import type { FakeKind } from './fake-kinds.ts';

const ENTRY = fileURLToPath(new URL('./fake-llm-server.ts', import.meta.url));

export interface FakeLlmProcess extends SpawnedProcess<{ port: number; pid: number }> {
  port: number;
  /** "127.0.0.1:port" (or "[::1]:port"), the node id the monitor records for it. */
  node: string;
  url: string;
  stats(): Promise<FakeServerStats>;
  reset(): Promise<void>;
  /** Changes the server's options at run time (models, latencyMs, slots, …). */
  configure(options: Record<string, unknown>): Promise<void>;
}

/** Starts a fake LLM server in its own process on a free loopback port. */
export async function startFakeLlmServer(
  options: {
    kind?: FakeKind;
    models?: string[];
    slots?: number;
    latencyMs?: number;
    port?: number;
    host?: string;
    headers?: string[];
  } = {},
): Promise<FakeLlmProcess> {
  const args = ['--kind', options.kind ?? 'openai', '--models', (options.models ?? ['fake-model']).join(',')];
  if (options.slots !== undefined) args.push('--slots', String(options.slots));
  if (options.latencyMs !== undefined) args.push('--latency-ms', String(options.latencyMs));
  if (options.port !== undefined) args.push('--port', String(options.port));
  if (options.host !== undefined) args.push('--host', options.host);
  for (const header of options.headers ?? []) args.push('--header', header);
  const proc = await spawnTsProcess<{ port: number; pid: number }>(ENTRY, args);
  const host = options.host ?? '127.0.0.1';
  const node = host.includes(':') ? `[${host}]:${proc.ready.port}` : `${host}:${proc.ready.port}`;
  const url = `http://${node}`;
  return {
    ...proc,
    port: proc.ready.port,
    node,
    url,
    stats: async () => (await fetch(`${url}/__fake/stats`)).json() as Promise<FakeServerStats>,
    reset: async () => void (await fetch(`${url}/__fake/reset`, { method: 'POST' })),
    configure: async (config) => void (await fetch(`${url}/__fake/config`, { method: 'POST', body: JSON.stringify(config) })),
  };
}
