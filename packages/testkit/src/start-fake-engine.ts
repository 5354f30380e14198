import { fileURLToPath } from 'node:url';
import { spawnTsProcess, type SpawnedProcess } from './spawn-process.ts';
import type { FakeEngineOptions } from './fake-engine.ts';
import type { EngineStats } from './fake-engine-sim.ts';
import type { LoadFault } from './fake-engine-routes.ts';

export const FAKE_ENGINE_ENTRY = fileURLToPath(new URL('./fake-engine.ts', import.meta.url));
const ENTRY = FAKE_ENGINE_ENTRY;

export interface FakeEngineStats extends EngineStats {
  running: number;
  waiting: number;
  loadedModels: string[];
  /** The model being loaded now, if any. */
  loading: string | null;
}

export interface FakeEngineProcess extends SpawnedProcess<{ port: number; pid: number }> {
  port: number;
  /** "127.0.0.1:port", the node id the monitor records for it. */
  node: string;
  url: string;
  options: FakeEngineOptions;
  stats(): Promise<FakeEngineStats>;
  reset(): Promise<void>;
  /** Makes the load endpoints misbehave (null heals them). */
  setFault(fault: LoadFault | null): Promise<void>;
}

export interface StartFakeEngineOptions {
  /** A plain-JavaScript bundle of fake-engine.ts to run instead of the source through tsx (faster to start). */
  bundle?: string;
  /** Generous by default: a bench or a test starts several at once on a small shared machine. */
  readyTimeoutMs?: number;
}

/** Starts a fake engine (fake-engine.ts) in its own process on a free loopback port. */
export async function startFakeEngine(options: FakeEngineOptions, start: StartFakeEngineOptions = {}): Promise<FakeEngineProcess> {
  const proc = await spawnTsProcess<{ port: number; pid: number }>(start.bundle ?? ENTRY, ['--config', JSON.stringify(options)], {
    readyTimeoutMs: start.readyTimeoutMs ?? 45_000,
    tsx: start.bundle === undefined,
  });
  const url = `http://127.0.0.1:${proc.ready.port}`;
  const post = async (path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, { method: 'POST', body: body === undefined ? undefined : JSON.stringify(body) });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
  };
  return {
    ...proc,
    port: proc.ready.port,
    node: `127.0.0.1:${proc.ready.port}`,
    url,
    options,
    stats: async () => (await fetch(`${url}/__engine/stats`)).json() as Promise<FakeEngineStats>,
    reset: () => post('/__engine/reset'),
    setFault: (fault) => post('/__engine/config', { fault }),
  };
}
