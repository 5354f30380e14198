/**
 * The routing strategies the bench compares, each as the gateway configuration that
 * selects it. "Without engine signals" turns load polling off (LOAD_POLL_MS=0): the
 * gateway then knows only its own in-flight counts, as a gateway that does not read the
 * engines would.
 */
export interface BenchStrategy {
  name: string;
  env: Record<string, string>;
}

/** Engine load polling as shipped (LOAD_POLL_MS default). */
const WITH_SIGNALS = { LOAD_POLL_MS: '1000' };
const WITHOUT_SIGNALS = { LOAD_POLL_MS: '0' };

export const BENCH_STRATEGIES: readonly BenchStrategy[] = [
  { name: 'ROUND_ROBIN', env: { ROUTING_STRATEGY: 'ROUND_ROBIN', ...WITHOUT_SIGNALS } },
  { name: 'RANDOM', env: { ROUTING_STRATEGY: 'RANDOM', ...WITHOUT_SIGNALS } },
  { name: 'P2C', env: { ROUTING_STRATEGY: 'P2C', ...WITH_SIGNALS } },
  { name: 'LEAST_LOADED', env: { ROUTING_STRATEGY: 'LEAST_LOADED', ...WITHOUT_SIGNALS } },
  { name: 'LEAST_LOADED+engine', env: { ROUTING_STRATEGY: 'LEAST_LOADED', ...WITH_SIGNALS } },
  { name: 'CACHE_AFFINITY', env: { ROUTING_STRATEGY: 'CACHE_AFFINITY', ...WITH_SIGNALS } },
];
