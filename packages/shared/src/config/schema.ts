import { LOG_LEVELS } from '../logger.ts';
import {
  apiKeyList,
  boolean,
  hostPortList,
  httpUrl,
  integer,
  list,
  modelAliases,
  nodeMap,
  offOrInteger,
  oneOf,
  portList,
  secondsAsMs,
  text,
  type Parser,
} from './parsers.ts';

export const ROUTING_STRATEGIES = ['ROUND_ROBIN', 'RANDOM', 'LEAST_LOADED', 'P2C', 'CACHE_AFFINITY'] as const;
export type RoutingStrategy = (typeof ROUTING_STRATEGIES)[number];

export const AUTO_MODEL_STRATEGIES = ['any_first', 'intersection_first'] as const;
export type AutoModelStrategy = (typeof AUTO_MODEL_STRATEGIES)[number];

/** NODE_PRIORITY of a node it does not list: after every listed node (listing a node prefers it). */
export const DEFAULT_NODE_PRIORITY = 1001;

/** The usual ports of self-hosted LLM servers: LM Studio, Ollama, llama.cpp, vLLM, SGLang. */
export const DEFAULT_SCAN_PORTS = '1234,11434,8080,8000,30000';

interface Field<T, D extends string | undefined = string | undefined> {
  env: string;
  /** The raw default, parsed like a user value so default and rule can never disagree. */
  default: D;
  parse: Parser<T>;
  /**
   * Only an empty value means "unset"; one of blanks is parsed like any other. For
   * variables where a blank that silently means "off" would be a security hole.
   */
  blankIsValue?: boolean;
}

function field<T, D extends string | undefined>(
  env: string,
  defaultValue: D,
  parse: Parser<T>,
  options: { blankIsValue?: boolean } = {},
): Field<T, D> {
  return { env, default: defaultValue, parse, ...options };
}

/** Shorter gateway keys are refused: guessable, or a value cut by a templating slip. */
export const MIN_GATEWAY_KEY_CHARS = 16;

/**
 * Every environment variable ai-lb reads, its default and its unit (in the property name).
 * README "Configuration" documents them; the ones the product contract does not name are marked extra.
 */
export const CONFIG_SCHEMA = {
  // Gateway
  port: field('LOAD_BALANCER_PORT', '8000', integer(0, 65_535)),
  host: field('LOAD_BALANCER_HOST', '0.0.0.0', text), // extra: bind address
  routingStrategy: field('ROUTING_STRATEGY', 'LEAST_LOADED', oneOf(ROUTING_STRATEGIES)),
  requestTimeoutMs: field('REQUEST_TIMEOUT_SECS', '60', secondsAsMs(0.01)),
  streamIdleTimeoutMs: field('STREAM_IDLE_TIMEOUT_SECS', '60', secondsAsMs(0.01)),
  firstTokenTimeoutMs: field('FIRST_TOKEN_TIMEOUT_SECS', '0', secondsAsMs(0)),
  maxRetries: field('MAX_RETRIES', '2', integer(0, 20)),
  circuitBreakerThreshold: field('CIRCUIT_BREAKER_THRESHOLD', '3', integer(1, 1000)),
  circuitBreakerTtlMs: field('CIRCUIT_BREAKER_TTL_SECS', '30', secondsAsMs(0.01)),
  minHealthyNodes: field('MIN_HEALTHY_NODES', '1', integer(0, 100_000)),
  queueTimeoutMs: field('QUEUE_TIMEOUT_MS', '0', integer(0, 3_600_000)),
  retryAfterSecs: field('RETRY_AFTER_SECS', '2', integer(0, 86_400)),
  slotLeaseMs: field('SLOT_LEASE_SECS', '10', secondsAsMs(0.1, 3600)),
  maxBodyBytes: field('MAX_BODY_BYTES', String(10 * 1024 * 1024), integer(1, 1024 * 1024 * 1024)),
  bufferBudgetMb: field('BUFFER_BUDGET_MB', '256', integer(1, 1024 * 1024)), // extra: bodies held in memory, all requests together
  clientWriteTimeoutMs: field('CLIENT_WRITE_TIMEOUT_SECS', '60', secondsAsMs(0.01)), // extra: a client that stops reading
  stickySessions: field('STICKY_SESSIONS', 'false', boolean),
  /** A stream that breaks after content went out continues on another node of a kind that can continue it. */
  streamResume: field('STREAM_RESUME', 'false', boolean),
  stickyTtlMs: field('STICKY_TTL_SECS', '600', secondsAsMs(1)),
  shutdownGraceMs: field('SHUTDOWN_GRACE_SECS', '10', secondsAsMs(0)), // extra: SIGTERM drain bound
  logLevel: field('LOG_LEVEL', 'info', oneOf(LOG_LEVELS)),
  corsOrigins: field('CORS_ORIGINS', '', list), // browser clients: origins allowed, or *; empty = no CORS headers
  responsesTtlMs: field('RESPONSES_TTL_SECS', '86400', secondsAsMs(1)), // how long a response id is routed to the node that made it
  /** One JSON access-log line per routed request (at level info). */
  logRequests: field('LOG_REQUESTS', 'true', boolean),
  /** OpenTelemetry traces go to <endpoint>/v1/traces (OTLP/HTTP, JSON) when set; unset = no tracing. */
  otelEndpoint: field('OTEL_EXPORTER_OTLP_ENDPOINT', undefined, httpUrl),
  otelServiceName: field('OTEL_SERVICE_NAME', 'ai-lb-gateway', text), // the spans' service.name
  /** host:port=N, lower first; a node not listed has DEFAULT_NODE_PRIORITY. */
  nodePriority: field('NODE_PRIORITY', '', nodeMap(integer(0, 1000), 'N (0 to 1000, lower first)')),

  // Models
  modelSentinels: field('MODEL_SENTINELS', 'auto,default', list),
  lmModel: field('LM_MODEL', undefined, text),
  preferredModels: field('PREFERRED_MODELS', '', list),
  autoModelStrategy: field('AUTO_MODEL_STRATEGY', 'any_first', oneOf(AUTO_MODEL_STRATEGIES)),
  modelAliases: field('MODEL_ALIASES', '', modelAliases),

  // Redis
  redisUrl: field('REDIS_URL', undefined, text),
  redisHost: field('REDIS_HOST', undefined, text),
  redisPort: field('REDIS_PORT', '6379', integer(1, 65_535)),
  redisPassword: field('REDIS_PASSWORD', undefined, text),
  redisKeyPrefix: field('REDIS_KEY_PREFIX', 'ai-lb:', text), // extra: lets tests and tenants share a Redis
  redisTls: field('REDIS_TLS', 'false', boolean), // extra: TLS without REDIS_URL (REDIS_HOST or sentinels)
  // Redis Sentinel (high availability): the sentinels are asked where the master is.
  redisSentinels: field('REDIS_SENTINELS', undefined, hostPortList(26_379)),
  redisSentinelName: field('REDIS_SENTINEL_NAME', 'mymaster', text),
  redisSentinelPassword: field('REDIS_SENTINEL_PASSWORD', undefined, text), // when the sentinels have their own requirepass

  // Discovery
  scanHosts: field('SCAN_HOSTS', '127.0.0.1', list),
  scanPorts: field('SCAN_PORTS', DEFAULT_SCAN_PORTS, portList),
  scanIntervalSecs: field('SCAN_INTERVAL', '10', integer(1, 86_400)),
  scanConcurrency: field('SCAN_CONCURRENCY', '256', integer(1, 4096)), // extra
  probeTimeoutMs: field('PROBE_TIMEOUT_MS', '1500', integer(50, 60_000)), // extra
  nodeTtlSecs: field('NODE_TTL_SECS', undefined, integer(1, 86_400)), // extra; default 3 × SCAN_INTERVAL
  // How long a node record outlives NODE_TTL_SECS as stale, for gateways to serve when the monitor is gone.
  fleetStaleLimitMs: field('FLEET_STALE_LIMIT_SECS', '3600', secondsAsMs(0, 604_800)),
  defaultMaxconn: field('DEFAULT_MAXCONN', '0', integer(0, 100_000)),
  maxconnMap: field('MAXCONN_MAP', '', nodeMap(integer(0, 100_000), 'N (N ≥ 0)')),
  monitorPort: field('MONITOR_PORT', '8001', integer(0, 65_535)),
  /** Engine load poll of every known node (vLLM/SGLang /metrics, llama.cpp /slots, Ollama /api/ps, …); 0 = off. */
  loadPollMs: field('LOAD_POLL_MS', '1000', offOrInteger(100, 60_000)),
  // extra. Loopback unlike the gateway: nobody but the operator's tools needs the monitor,
  // and its /metrics lists every node's address and models.
  monitorHost: field('MONITOR_HOST', '127.0.0.1', text),

  // Security
  gatewayApiKeys: field('GATEWAY_API_KEYS', '', apiKeyList(MIN_GATEWAY_KEY_CHARS), { blankIsValue: true }),
  nodeApiKeys: field('NODE_API_KEYS', '', nodeMap(text, 'key', { secret: true })),
} as const;

type Schema = typeof CONFIG_SCHEMA;
type Parsed<F> = F extends Field<infer T, string | undefined> ? T : never;
type WithDefault<F> = F extends { default: string } ? Parsed<F> : Parsed<F> | undefined;

export type RawConfig = { readonly [K in keyof Schema]: WithDefault<Schema[K]> };
