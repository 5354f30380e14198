import type { Config } from '@ai-lb/shared';

/**
 * The circuit breaker lives in the state store, not here: acquireSlot skips open circuits
 * and hands out the single half-open probe, releaseSlot records each attempt's outcome.
 * One breaker per node for all replicas (SPEC: "Shared by all replicas") — a per-process
 * breaker would let N replicas each hammer a dead node N × threshold times.
 * What the gateway decides is only which outcome an attempt had (classify-failure.ts)
 * and these settings.
 */
export interface BreakerSettings {
  threshold: number;
  ttlMs: number;
}

export function breakerSettings(config: Pick<Config, 'circuitBreakerThreshold' | 'circuitBreakerTtlMs'>): BreakerSettings {
  return { threshold: config.circuitBreakerThreshold, ttlMs: config.circuitBreakerTtlMs };
}
