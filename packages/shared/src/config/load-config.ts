import { hostForUrl } from '../node-id.ts';
import { ConfigError, type HostPort } from './parsers.ts';
import { CONFIG_SCHEMA, type RawConfig } from './schema.ts';

/** Where a Redis behind Sentinel is found, and how to talk to it and to the sentinels. */
export interface RedisSentinelTarget {
  sentinels: readonly HostPort[];
  /** The master's name in the sentinels' configuration (REDIS_SENTINEL_NAME). */
  name: string;
  /** The master's and replicas' password (REDIS_PASSWORD). */
  password?: string;
  /** The sentinels' own password (REDIS_SENTINEL_PASSWORD). */
  sentinelPassword?: string;
  /** TLS to the sentinels and to the master (REDIS_TLS). */
  tls: boolean;
}

export interface Config extends RawConfig {
  /** true when REDIS_URL, REDIS_HOST or REDIS_SENTINELS is set: `pnpm start` then uses Redis, not memory. */
  readonly redisConfigured: boolean;
  /** REDIS_URL, or one built from REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/REDIS_TLS (default localhost:6379). */
  readonly redisConnectionUrl: string;
  /** Set when REDIS_SENTINELS is: then the sentinels, not redisConnectionUrl, say where Redis is. */
  readonly redisSentinel: RedisSentinelTarget | null;
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
    // Blank counts as unset: `FOO=` in a compose file means "use the default".
    const blankIsValue = (field as { blankIsValue?: boolean }).blankIsValue === true;
    const unset = value === undefined || value === '' || (!blankIsValue && value.trim() === '');
    const source = unset ? field.default : value;
    raw[key] = source === undefined ? undefined : (field.parse as (r: string, n: string) => unknown)(source, field.env);
  }
  const config = raw as unknown as RawConfig;

  if (config.redisUrl !== undefined && !isRedisUrl(config.redisUrl)) {
    throw new ConfigError('REDIS_URL', redactUrl(config.redisUrl), 'a redis:// or rediss:// URL');
  }
  checkRedisChoice(config);

  return Object.freeze({
    ...config,
    redisConfigured: config.redisUrl !== undefined || config.redisHost !== undefined || config.redisSentinels !== undefined,
    redisConnectionUrl: config.redisUrl ?? buildRedisUrl(config),
    redisSentinel: sentinelTarget(config),
    nodeTtlMs: (config.nodeTtlSecs ?? config.scanIntervalSecs * 3) * 1000,
  });
}

/** What ioredis can connect to: a redis:// or rediss:// URL that parses (port included). */
function isRedisUrl(url: string): boolean {
  if (!/^rediss?:\/\//i.test(url)) return false;
  try {
    new URL(url);
    return true;
  } catch {
    return false;
  }
}

function buildRedisUrl(config: RawConfig): string {
  const auth = config.redisPassword ? `:${encodeURIComponent(config.redisPassword)}@` : '';
  const host = config.redisHost ?? 'localhost';
  return `${config.redisTls ? 'rediss' : 'redis'}://${auth}${hostForUrl(host)}:${config.redisPort}`;
}

/**
 * One way to find Redis. A REDIS_URL or REDIS_HOST left over beside REDIS_SENTINELS would
 * be silently ignored (the sentinels say where the master is), and REDIS_TLS=true beside a
 * redis:// URL would silently not be TLS: each is refused at start instead.
 */
function checkRedisChoice(config: RawConfig): void {
  if (config.redisSentinels !== undefined) {
    const unset = 'unset when REDIS_SENTINELS is set (the sentinels name the master; its password is REDIS_PASSWORD, TLS is REDIS_TLS)';
    if (config.redisUrl !== undefined) throw new ConfigError('REDIS_URL', redactUrl(config.redisUrl), unset);
    if (config.redisHost !== undefined) throw new ConfigError('REDIS_HOST', config.redisHost, unset);
  }
  if (config.redisTls && config.redisUrl !== undefined && !/^rediss:/i.test(config.redisUrl)) {
    throw new ConfigError('REDIS_TLS', 'true', 'false beside a redis:// REDIS_URL (write rediss:// for TLS)');
  }
}

function sentinelTarget(config: RawConfig): RedisSentinelTarget | null {
  if (config.redisSentinels === undefined) return null;
  return {
    sentinels: config.redisSentinels,
    name: config.redisSentinelName,
    ...(config.redisPassword === undefined ? {} : { password: config.redisPassword }),
    ...(config.redisSentinelPassword === undefined ? {} : { sentinelPassword: config.redisSentinelPassword }),
    tls: config.redisTls,
  };
}

/**
 * Never print a password that a URL may carry: everything before the last "@" goes, also
 * when the scheme is missing (the very case that gets reported) or the password holds "/".
 */
export function redactUrl(url: string): string {
  const at = url.lastIndexOf('@');
  if (at < 0) return url;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  return `${scheme}***${url.slice(at)}`;
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
