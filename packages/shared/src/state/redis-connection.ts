import { Redis, type RedisOptions } from 'ioredis';
import { redactUrl, type RedisSentinelTarget } from '../config/load-config.ts';
import { GatewayError } from '../errors.ts';
import { silentLogger, type Logger } from '../logger.ts';

export interface RedisConnectionOptions {
  /** Bounds the TCP/TLS connect; also how long a call waits for the very first connection. */
  connectTimeoutMs?: number;
  /** Bounds every command's round trip, so a Redis that stops answering cannot hang a request. */
  commandTimeoutMs?: number;
  /** One line when Redis goes away and one when it is back (never one per retry). */
  log?: Logger;
  /** Anything else ioredis accepts; wins over the defaults below. */
  redisOptions?: RedisOptions;
}

/** A Redis URL, or the sentinels that know where the master is. */
export type RedisTarget = string | RedisSentinelTarget;

const DEFAULT_CONNECT_TIMEOUT_MS = 2000;
const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
const everReady = new WeakSet<Redis>();

/** Capped exponential backoff that never gives up: Redis coming back is always worth it. */
const backoffMs = (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000);

/**
 * An ioredis client that fails fast instead of queueing: while Redis is down every call
 * rejects at once (no offline queue) and the client keeps reconnecting in the background
 * (capped backoff, never gives up). `rediss://` URLs get TLS and URL passwords are used by
 * ioredis itself. An 'error' listener is always attached: without one ioredis reports
 * each failed reconnect on the console. With a Sentinel target every (re)connect asks the
 * sentinels where the master is (sentinelOptions).
 */
export function createRedisConnection(target: RedisTarget, options: RedisConnectionOptions = {}): Redis {
  const connectTimeout = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const common: RedisOptions = {
    connectTimeout,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: backoffMs,
  };
  const client =
    typeof target === 'string'
      ? new Redis(target, { ...common, ...options.redisOptions })
      : new Redis({ ...common, ...sentinelOptions(target, connectTimeout), ...options.redisOptions });
  watchConnection(client, redisLabel(target), options.log ?? silentLogger);
  return client;
}

/**
 * ioredis in Sentinel mode. On every (re)connect it asks the sentinels for the master and
 * checks the role of what it reached, so a master killed or demoted is followed to the
 * promoted replica; commands and pub/sub go to the new master once reconnected. A Redis
 * whose role changes drops its clients itself, which starts that reconnect.
 *  - reconnectOnError on READONLY: a command that still reached a master that became a
 *    replica drops the connection, and the reconnect asks the sentinels again;
 *  - sentinelRetryStrategy: when no sentinel answers, keep asking (capped backoff) rather
 *    than give up, as for a plain Redis that is down;
 *  - no failoverDetector: when its +switch-master arrived while the client was already
 *    reconnecting (the master had died), it ended the client for good ("connecting ->
 *    end", never reconnected) in 2 of 6 failovers under load.
 */
function sentinelOptions(target: RedisSentinelTarget, connectTimeoutMs: number): RedisOptions {
  return {
    sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
    name: target.name,
    password: target.password,
    sentinelPassword: target.sentinelPassword,
    ...(target.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
    sentinelCommandTimeout: connectTimeoutMs,
    sentinelRetryStrategy: backoffMs,
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  };
}

/** How logs name the connection: never a password. */
export function redisLabel(target: RedisTarget): string {
  if (typeof target === 'string') return redactUrl(target);
  const sentinels = target.sentinels.map(({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`).join(',');
  return `sentinel master ${target.name} via ${sentinels}`;
}

/** Tracks whether the client was ever ready and logs outages once (see ensureReady). */
export function watchConnection(client: Redis, redis: string, log: Logger): void {
  let down = false;
  client.on('ready', () => {
    everReady.add(client);
    if (down) log.info({ redis }, 'redis reachable again');
    down = false;
  });
  client.on('error', (error: NodeJS.ErrnoException) => {
    if (!down) log.warn({ redis, err: error.code ?? error.message }, 'redis unreachable; reconnecting in the background');
    down = true;
  });
}

/**
 * Resolves when a command may be sent now. Only the first connection after start is waited
 * for (bounded by timeoutMs): afterwards a client that is not ready means Redis is down,
 * and the caller gets a state_unavailable error at once instead of a hang.
 */
export async function ensureReady(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  if (client.status === 'wait') client.connect().catch(() => undefined);
  const firstAttempt = client.status === 'connecting' || client.status === 'connect';
  if (!firstAttempt || everReady.has(client)) throw notConnected(client.status);
  // One waiter per client, however many calls arrive during start-up.
  let pending = firstConnection.get(client);
  if (pending === undefined) {
    pending = waitForFirstConnection(client, timeoutMs).finally(() => firstConnection.delete(client));
    firstConnection.set(client, pending);
  }
  await pending;
}

const firstConnection = new WeakMap<Redis, Promise<void>>();

function waitForFirstConnection(client: Redis, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (error?: Error) => {
      clearTimeout(timer);
      client.off('ready', onReady).off('close', onClose).off('end', onClose);
      if (error) reject(error);
      else resolve();
    };
    const onReady = () => done();
    const onClose = () => done(notConnected('connection failed'));
    const timer = setTimeout(() => done(notConnected(`not connected within ${timeoutMs} ms`)), timeoutMs);
    client.once('ready', onReady).once('close', onClose).once('end', onClose);
  });
}

function notConnected(detail: string): GatewayError {
  return new GatewayError('state_unavailable', `state store unavailable: Redis is not connected (${detail})`);
}
