/**
 * Shared by the monitor's tests: a Config from a few env values (loopback only, no
 * scheduling surprises), a real state store of either kind, and metric readings.
 */
import { inject } from 'vitest';
import { loadConfig, MemoryStateStore, RedisStateStore, type Config, type NodeState, type StateStore } from '@ai-lb/shared';
import { uniquePrefix } from '@ai-lb/testkit';

export const STORE_KINDS = ['memory', 'redis'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

export function testConfig(env: Record<string, string>): Config {
  return loadConfig({
    SCAN_PORTS: '1', // host:port entries in SCAN_HOSTS pin their own port
    MONITOR_PORT: '0',
    LOAD_BALANCER_HOST: '127.0.0.1',
    PROBE_TIMEOUT_MS: '2000',
    ...env,
  });
}

/** A real store: in memory, or on the suite's redis-server under a prefix of its own. */
export function createTestStore(kind: StoreKind): StateStore {
  return kind === 'memory' ? new MemoryStateStore() : new RedisStateStore({ url: inject('redisUrl'), keyPrefix: uniquePrefix('monitor') });
}

export async function nodesById(store: StateStore): Promise<Record<string, NodeState>> {
  return Object.fromEntries((await store.listNodes()).map((n) => [n.node, n]));
}

interface Readable {
  get(): Promise<{ values: { labels: Partial<Record<string, string | number>>; value: number }[] }>;
}

/** Sum of a counter's or gauge's series matching `labels`. */
export async function metricValue(metric: Readable, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([key, value]) => v.labels[key] === value)).reduce((sum, v) => sum + v.value, 0);
}

/** Polls `check` until it returns true, at most `timeoutMs`; returns whether it did. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
