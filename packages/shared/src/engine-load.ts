import type { NodeId } from './types.ts';

/**
 * What a node's engine said about its own load at one moment, normalised over server
 * kinds. Written by the monitor's load poller (LOAD_POLL_MS), read by gateways. A field
 * the engine does not expose is null, never a guess: Ollama and LM Studio tell which
 * models are loaded but not their queue; vLLM tells its queue but always has its model
 * loaded.
 */
export interface EngineLoadReading {
  node: NodeId;
  /** Requests the engine is decoding now, from every client (ai-lb's included). */
  running: number | null;
  /** Requests queued inside the engine, waiting for a slot. */
  waiting: number | null;
  /** KV-cache fill, 0..1. */
  kvCacheUsage: number | null;
  /** Models loaded in memory, where the engine can have several and swaps them. */
  loadedModels: string[] | null;
  /** Epoch ms the reading was taken (the monitor's clock). */
  at: number;
}

/** A reading is trusted for this many poll intervals; older ones are ignored by readers. */
export const ENGINE_LOAD_MAX_AGE_POLLS = 3;

/**
 * How long a reading stays usable: 3 poll intervals. The store keeps it that long too
 * (putEngineLoads' TTL), so a monitor that stops leaves no load behind.
 */
export function engineLoadMaxAgeMs(loadPollMs: number): number {
  return ENGINE_LOAD_MAX_AGE_POLLS * loadPollMs;
}

/**
 * The readings young enough to route on. Readers call this even though the store expires
 * readings by TTL: the monitor's clock and the reader's may differ, and a cache may hold a
 * reading past its TTL. A reading from the future (clock skew) counts as fresh.
 */
export function freshEngineLoads(
  readings: Readonly<Record<NodeId, EngineLoadReading>>,
  now: number,
  maxAgeMs: number,
): Record<NodeId, EngineLoadReading> {
  const fresh: Record<NodeId, EngineLoadReading> = {};
  for (const [node, reading] of Object.entries(readings)) if (now - reading.at <= maxAgeMs) fresh[node] = reading;
  return fresh;
}

/** The argument checks both stores make before writing: a TypeError names what is wrong. */
export function validateEngineLoads(readings: readonly EngineLoadReading[], ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new TypeError(`putEngineLoads: ttlMs must be an integer ≥ 1, got ${String(ttlMs)}`);
  for (const reading of readings) {
    if (typeof reading?.node !== 'string' || reading.node === '') throw new TypeError('putEngineLoads: every reading needs a node id');
    if (!Number.isFinite(reading.at)) throw new TypeError(`putEngineLoads: reading of ${reading.node} has no valid "at"`);
  }
}
