/**
 * Writes the bench's upstreams into a Redis state store as the monitor would (healthy,
 * uncapped, TTL longer than any bench run), so the gateway-redis target runs the gateway
 * alone — no monitor scanning inside the measured process.
 */
import { RedisStateStore, type ApiSurface, type NodeState, type ServerKind } from '@ai-lb/shared';
import { BENCH_MODEL, HELD_STREAM_MODEL } from './start-bench-fleet.ts';

const SEED_TTL_MS = 3600_000;

/** The models every fake upstream of the bench serves. */
export const FAKE_UPSTREAM_MODELS = [BENCH_MODEL, HELD_STREAM_MODEL];

/** An upstream to seed: where it listens and the models it serves. */
export interface SeededUpstream {
  node: string;
  port: number;
  models: string[];
  /** What the monitor would have found (default: a generic OpenAI-compatible server). */
  kind?: ServerKind;
  surfaces?: readonly ApiSurface[];
}

export async function seedFleet(redisUrl: string, keyPrefix: string, upstreams: readonly SeededUpstream[], maxconn = 0): Promise<void> {
  const store = new RedisStateStore({ url: redisUrl, keyPrefix });
  try {
    const now = Date.now();
    for (const upstream of upstreams) await store.putNode(nodeState(upstream, now, maxconn), SEED_TTL_MS);
  } finally {
    await store.close();
  }
}

function nodeState(upstream: SeededUpstream, now: number, maxconn: number): NodeState {
  return {
    node: upstream.node,
    host: '127.0.0.1',
    port: upstream.port,
    kind: upstream.kind ?? 'openai',
    ...(upstream.surfaces ? { surfaces: upstream.surfaces } : {}),
    healthy: true,
    models: upstream.models,
    loadedModels: [],
    maxconn,
    capacitySource: 'default',
    detectedMaxconn: null,
    latencyMs: 1,
    lastSeenMs: now,
    checkedAtMs: now,
    error: null,
    serverLoad: null,
  };
}
