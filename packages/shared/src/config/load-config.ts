import { ConfigError } from './parsers.ts';
import { CONFIG_SCHEMA, type RawConfig } from './schema.ts';

export interface Config extends RawConfig {
  /** true when REDIS_URL or REDIS_HOST is set: `pnpm start` then uses Redis, not memory. */
  readonly redisConfigured: boolean;
  /** REDIS_URL, or one built from REDIS_HOST/REDIS_PORT/REDIS_PASSWORD (default localhost:6379). */
  readonly redisConnectionUrl: string;
  /** How long a node record lives without a refresh: NODE_TTL_SECS or 3 × SCAN_INTERVAL. */
  readonly nodeTtlMs: number;
}

/**
 * The only reader of the environment: parses every variable once, validates it, and
 * returns a frozen Config. A bad value throws ConfigError with a one-line message.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(CONFIG_SCHEMA)) {
    const value = env[field.env];
    const source = value === undefined || value === '' ? field.default : value;
    raw[key] = source === undefined ? undefined : (field.parse as (r: string, n: string) => unknown)(source, field.env);
  }
  const config = raw as unknown as RawConfig;

  if (config.redisUrl !== undefined && !/^rediss?:\/\//.test(config.redisUrl)) {
    throw new ConfigError('REDIS_URL', redactUrl(config.redisUrl), 'a redis:// or rediss:// URL');
  }

  return Object.freeze({
    ...config,
    redisConfigured: config.redisUrl !== undefined || config.redisHost !== undefined,
    redisConnectionUrl: config.redisUrl ?? buildRedisUrl(config),
    nodeTtlMs: (config.nodeTtlSecs ?? config.scanIntervalSecs * 3) * 1000,
  });
}

function buildRedisUrl(config: RawConfig): string {
  const auth = config.redisPassword ? `:${encodeURIComponent(config.redisPassword)}@` : '';
  return `redis://${auth}${config.redisHost ?? 'localhost'}:${config.redisPort}`;
}

/** Never print a password that a URL may carry. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

/** For main(): a bad config prints its one line and exits 1, never a stack trace. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`ai-lb: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}
