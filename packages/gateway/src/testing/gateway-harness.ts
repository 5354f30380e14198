/**
 * Test support (not a test): a gateway in-process on a real store — memory, or the suite's
 * real redis-server under a unique key prefix — with node records written straight into
 * the store, so routing is deterministic. Upstreams are real fake-server processes.
 */
import { afterAll, beforeAll, beforeEach, inject, onTestFinished } from 'vitest';
import { createStateStore, loadConfig, type Config, type Logger, type NodeState, type StateStore } from '@ai-lb/shared';
import { startFakeLlmServer, uniquePrefix, type FakeLlmProcess } from '@ai-lb/testkit';
import { createGateway, type Gateway } from '../create-gateway.ts';

export type StoreKind = 'memory' | 'redis';
export const STORE_KINDS: StoreKind[] = ['memory', 'redis'];

export interface Harness {
  url: string;
  gateway: Gateway;
  store: StateStore;
  config: Config;
  prefix: string;
  /**
   * Writes node records as a live monitor's completed scan (so the fleet is authoritative:
   * an unknown model is a 404) and waits until the gateway's cache has them.
   */
  putNodes(...nodes: NodeState[]): Promise<void>;
  post(path: string, body: unknown, init?: { headers?: Record<string, string>; signal?: AbortSignal }): Promise<Response>;
  get(path: string, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

/** Env for loadConfig: loopback, any port, the store's prefix; the test's overrides win. */
export function testEnv(kind: StoreKind, prefix: string, env: Record<string, string> = {}): Record<string, string> {
  return {
    LOAD_BALANCER_PORT: '0',
    LOAD_BALANCER_HOST: '127.0.0.1',
    REDIS_KEY_PREFIX: prefix,
    ...(kind === 'redis' ? { REDIS_URL: inject('redisUrl') } : {}),
    ...env,
  };
}

/** Starts a gateway for one test; it is closed when the test finishes. */
export async function startGateway(kind: StoreKind, env: Record<string, string> = {}, options: { log?: Logger } = {}): Promise<Harness> {
  const prefix = uniquePrefix('gw');
  const config = loadConfig(testEnv(kind, prefix, env));
  const store = createStateStore(config);
  const gateway = await createGateway({ config, store, fleetRefreshMs: 200, log: options.log });
  const port = await gateway.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  const harness: Harness = {
    url,
    gateway,
    store,
    config,
    prefix,
    async putNodes(...nodes) {
      await publishAsMonitor(store, nodes);
      await gateway.refreshFleet();
    },
    post: (path, body, init = {}) =>
      fetch(url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...init.headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
        signal: init.signal,
      }),
    get: (path, headers = {}) => fetch(url + path, { headers }),
    async close() {
      await gateway.close(500);
      await store.close();
    },
  };
  onTestFinished(() => harness.close());
  return harness;
}

/** The monitor id test helpers scan as. */
export const TEST_MONITOR_ID = 'test-monitor';

/**
 * Writes node records the way a live monitor does: it holds the monitor lease (for long:
 * nothing renews it), and the records are one completed scan. The fleet is then
 * authoritative (a model no node lists is a 404, not a 503 no_fleet) and fresh.
 */
export async function publishAsMonitor(store: StateStore, nodes: readonly NodeState[], ttlMs = 60_000): Promise<void> {
  await store.claimMonitorLease(TEST_MONITOR_ID, 600_000);
  const scan = await store.beginScan();
  for (const node of nodes) await store.putNode(node, ttlMs, { scan });
  await store.completeScan(scan, TEST_MONITOR_ID);
}

/** A healthy node record for a fake server (or any host:port). */
export function nodeState(node: string, models: string[], overrides: Partial<NodeState> = {}): NodeState {
  const at = node.lastIndexOf(':');
  const now = Date.now();
  return {
    node,
    host: node.slice(0, at).replace(/^\[|\]$/g, ''),
    port: Number(node.slice(at + 1)),
    kind: 'openai',
    healthy: true,
    models,
    loadedModels: [],
    maxconn: 0,
    capacitySource: 'default',
    detectedMaxconn: null,
    latencyMs: 5,
    lastSeenMs: now,
    checkedAtMs: now,
    error: null,
    serverLoad: null,
    ...overrides,
  };
}

export const chatBody = (model: string | undefined, extra: Record<string, unknown> = {}) => ({
  ...(model === undefined ? {} : { model }),
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

/** Polls `check` until it returns true; bounded in time, never spins. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 3000, stepMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** The SSE data payloads of a stream body, in order. */
export function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((event) => event.trim() !== '')
    .map((event) =>
      event
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trim())
        .join('\n'),
    );
}

/**
 * Fake LLM servers (real processes) shared by every test of a file: started before the
 * first test, stopped after the last, and reset before each test (stats and any failMode),
 * so one test's fault never leaks into the next. `assign` receives them once started.
 */
export function useFakeServers(
  count: number,
  assign: (servers: FakeLlmProcess[]) => void,
  options: Array<Parameters<typeof startFakeLlmServer>[0]> = [],
): void {
  let servers: FakeLlmProcess[] = [];
  beforeAll(async () => {
    servers = await Promise.all(Array.from({ length: count }, (_, i) => startFakeLlmServer(options[i])));
    assign(servers);
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
  });
  beforeEach(async () => {
    await Promise.all(servers.flatMap((server) => [server.reset(), server.configure({ failMode: null })]));
  });
}
