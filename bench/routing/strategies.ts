/**
 * The routing strategies the bench compares, each as the gateway configuration that
 * selects it. `implemented: false` rows are reported as "not implemented" without running:
 * the pure orders exist (packages/gateway/src/routing/engine-load-ranking.ts,
 * cache-affinity.ts) but the request pipeline does not route by them yet. Flip the flag
 * when it does.
 */
export interface BenchStrategy {
  name: string;
  env: Record<string, string>;
  implemented: boolean;
}

/** Engine load polling as shipped (LOAD_POLL_MS default). */
const WITH_SIGNALS = { LOAD_POLL_MS: '1000' };
const WITHOUT_SIGNALS = { LOAD_POLL_MS: '0' };

export const BENCH_STRATEGIES: readonly BenchStrategy[] = [
  { name: 'ROUND_ROBIN', env: { ROUTING_STRATEGY: 'ROUND_ROBIN', ...WITHOUT_SIGNALS }, implemented: true },
  { name: 'RANDOM', env: { ROUTING_STRATEGY: 'RANDOM', ...WITHOUT_SIGNALS }, implemented: true },
  { name: 'P2C', env: { ROUTING_STRATEGY: 'P2C', ...WITH_SIGNALS }, implemented: true },
  { name: 'LEAST_LOADED', env: { ROUTING_STRATEGY: 'LEAST_LOADED', ...WITHOUT_SIGNALS }, implemented: true },
  { name: 'LEAST_LOADED+engine', env: { ROUTING_STRATEGY: 'LEAST_LOADED', ...WITH_SIGNALS }, implemented: false },
  { name: 'CACHE_AFFINITY', env: { ROUTING_STRATEGY: 'CACHE_AFFINITY', ...WITH_SIGNALS }, implemented: false },
];
