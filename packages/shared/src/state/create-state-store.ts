import type { Config } from '../config/load-config.ts';
import type { Clock } from '../types.ts';
import { MemoryStateStore } from './memory-state-store.ts';
import type { RedisConnectionOptions } from './redis-connection.ts';
import { RedisStateStore } from './redis-state-store.ts';
import { ResilientStateStore } from './resilient-state-store.ts';
import type { StateStore } from './state-store.ts';

export interface CreateStateStoreOptions extends Omit<RedisConnectionOptions, 'redisOptions'> {
  /** Use the in-memory store even when Redis is configured (`pnpm inventory` without --write). */
  forceMemory?: boolean;
  /** Use Redis even when neither REDIS_URL nor REDIS_HOST is set (then localhost:6379). */
  forceRedis?: boolean;
  /** For the memory store only: Redis decides time itself (see RedisStateStore). */
  clock?: Clock;
  /**
   * Wrap Redis in a ResilientStateStore: while Redis is unreachable this replica keeps
   * serving on its last fleet and local accounting (`degraded`) instead of failing.
   */
  resilient?: boolean;
}

/**
 * The one place that picks the store: Redis when REDIS_URL / REDIS_HOST / REDIS_SENTINELS is
 * set, else memory (`pnpm start` runs on embedded state unless Redis is configured). The Redis store's
 * connection fails fast and reconnects in the background, so a Redis outage makes calls
 * reject with `state_unavailable` instead of crashing or hanging the process.
 */
export function createStateStore(config: Config, options: CreateStateStoreOptions = {}): StateStore {
  const useRedis = !options.forceMemory && (config.redisConfigured || options.forceRedis === true);
  if (!useRedis) return new MemoryStateStore({ clock: options.clock });
  const redis = new RedisStateStore({
    ...(config.redisSentinel ? { sentinel: config.redisSentinel } : { url: config.redisConnectionUrl }),
    keyPrefix: config.redisKeyPrefix,
    connectTimeoutMs: options.connectTimeoutMs,
    commandTimeoutMs: options.commandTimeoutMs,
    log: options.log,
  });
  return options.resilient ? new ResilientStateStore({ remote: redis, log: options.log }) : redis;
}
