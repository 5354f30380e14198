/**
 * Test support (not a test): gateway replicas as real processes (`pnpm start:gateway`,
 * through tsx) on one Redis, and small HTTP helpers to talk to them. Everything started
 * is stopped by the caller (stopAll in afterAll).
 */
import { fileURLToPath } from 'node:url';
import { spawnTsProcess, type SpawnedProcess } from '@ai-lb/testkit';

/** The composition above the gateway: started by path, never imported. */
export const GATEWAY_ENTRY = fileURLToPath(new URL('../../../cli/src/gateway.ts', import.meta.url));

export type GatewayProcess = SpawnedProcess<{ port: number; pid: number }>;

export interface NodesBody {
  data: Array<{ node: string; inflight: number; maxconn: number; circuit: string }>;
}

/** Env for a replica: loopback, any free port, the test's Redis and prefix. */
export function replicaEnv(redisUrl: string, prefix: string, env: Record<string, string> = {}): Record<string, string> {
  return {
    LOAD_BALANCER_PORT: '0',
    LOAD_BALANCER_HOST: '127.0.0.1',
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: prefix,
    SHUTDOWN_GRACE_SECS: '1',
    ...env,
  };
}

export function startReplicas(count: number, env: Record<string, string>): Promise<GatewayProcess[]> {
  return Promise.all(
    Array.from({ length: count }, () => spawnTsProcess<{ port: number; pid: number }>(GATEWAY_ENTRY, [], { env, readyTimeoutMs: 20_000 })),
  );
}

export async function stopAll(replicas: readonly (GatewayProcess | undefined)[]): Promise<void> {
  await Promise.all(replicas.map((gw) => gw?.stop()));
}

export function postChat(
  gw: GatewayProcess,
  body: unknown,
  init: { query?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Response> {
  return fetch(`http://127.0.0.1:${gw.ready.port}/v1/chat/completions${init.query ?? ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: JSON.stringify(body),
    signal: init.signal,
  });
}

export async function getJson<T>(gw: GatewayProcess, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`http://127.0.0.1:${gw.ready.port}${path}`);
  return { status: res.status, body: (await res.json()) as T };
}

export async function getText(gw: GatewayProcess, path: string): Promise<string> {
  return (await fetch(`http://127.0.0.1:${gw.ready.port}${path}`)).text();
}

/** Fleet-wide in-flight count of one node, as a replica's /v1/nodes reports it. */
export async function inflightVia(gw: GatewayProcess, node: string): Promise<number | undefined> {
  const { body } = await getJson<NodesBody>(gw, '/v1/nodes');
  return body.data.find((n) => n.node === node)?.inflight;
}

/** One sample's value from a Prometheus text exposition (first line that starts with `series`). */
export function metricValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
