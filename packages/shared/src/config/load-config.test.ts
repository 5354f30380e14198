import { describe, expect, it } from 'vitest';
import { loadConfig, redactUrl, type Config } from './load-config.ts';
import { ConfigError } from './parsers.ts';
import { CONFIG_SCHEMA } from './schema.ts';

interface Case {
  key: keyof Config;
  default: unknown;
  good: [raw: string, parsed: unknown][];
  bad: string[];
  /** Part of "what is allowed" that the message must carry. */
  allowed?: RegExp;
}

const MiB10 = 10 * 1024 * 1024;

/** Every variable of CONFIG_SCHEMA: its default, good values, bad values. */
const CASES: Record<string, Case> = {
  LOAD_BALANCER_PORT: {
    key: 'port',
    default: 8000,
    good: [
      ['0', 0],
      ['65535', 65535],
      [' 8080 ', 8080],
    ],
    bad: ['65536', '-1', 'abc', '80.5', '0x1F40', '1e3'],
    allowed: /integer from 0 to 65535/,
  },
  LOAD_BALANCER_HOST: {
    key: 'host',
    default: '0.0.0.0',
    good: [
      ['127.0.0.1', '127.0.0.1'],
      [' ::1 ', '::1'],
    ],
    bad: [],
  },
  ROUTING_STRATEGY: {
    key: 'routingStrategy',
    default: 'LEAST_LOADED',
    good: [
      ['round_robin', 'ROUND_ROBIN'],
      ['P2C', 'P2C'],
      ['random', 'RANDOM'],
      ['cache_affinity', 'CACHE_AFFINITY'],
    ],
    bad: ['FASTEST', 'ROUND ROBIN'],
    allowed: /ROUND_ROBIN, RANDOM, LEAST_LOADED, P2C, CACHE_AFFINITY/,
  },
  REQUEST_TIMEOUT_SECS: {
    key: 'requestTimeoutMs',
    default: 60_000,
    good: [
      ['0.5', 500],
      ['120', 120_000],
    ],
    bad: ['0', '-1', 'abc', '1e9', 'Infinity', '0x10'],
    allowed: /seconds from 0.01 to 86400/,
  },
  STREAM_IDLE_TIMEOUT_SECS: { key: 'streamIdleTimeoutMs', default: 60_000, good: [['2.5', 2500]], bad: ['0', 'soon'], allowed: /seconds/ },
  FIRST_TOKEN_TIMEOUT_SECS: {
    key: 'firstTokenTimeoutMs',
    default: 0,
    good: [
      ['0', 0],
      ['3', 3000],
      ['0.0001', 1],
    ],
    bad: ['-1', 'off'],
    allowed: /seconds from 0/,
  },
  MAX_RETRIES: {
    key: 'maxRetries',
    default: 2,
    good: [
      ['0', 0],
      ['20', 20],
    ],
    bad: ['21', '1.5', '-1', 'two'],
    allowed: /integer from 0 to 20/,
  },
  CIRCUIT_BREAKER_THRESHOLD: { key: 'circuitBreakerThreshold', default: 3, good: [['1', 1]], bad: ['0', 'x'], allowed: /integer from 1/ },
  CIRCUIT_BREAKER_TTL_SECS: { key: 'circuitBreakerTtlMs', default: 30_000, good: [['0.25', 250]], bad: ['0', '-5'], allowed: /seconds/ },
  MIN_HEALTHY_NODES: {
    key: 'minHealthyNodes',
    default: 1,
    good: [
      ['0', 0],
      ['3', 3],
    ],
    bad: ['-1', 'many'],
    allowed: /integer from 0/,
  },
  QUEUE_TIMEOUT_MS: {
    key: 'queueTimeoutMs',
    default: 0,
    good: [['250', 250]],
    bad: ['-1', '1.5', '3600001'],
    allowed: /integer from 0 to 3600000/,
  },
  RETRY_AFTER_SECS: {
    key: 'retryAfterSecs',
    default: 2,
    good: [
      ['0', 0],
      ['30', 30],
    ],
    bad: ['-1', '1.5'],
    allowed: /integer from 0/,
  },
  SLOT_LEASE_SECS: {
    key: 'slotLeaseMs',
    default: 10_000,
    good: [
      ['0.1', 100],
      ['3600', 3_600_000],
    ],
    bad: ['0.05', '3601', '0'],
    allowed: /seconds from 0.1 to 3600/,
  },
  MAX_BODY_BYTES: {
    key: 'maxBodyBytes',
    default: MiB10,
    good: [
      ['1', 1],
      ['1048576', 1_048_576],
    ],
    bad: ['0', '10MB', '1073741825'],
    allowed: /integer from 1/,
  },
  STICKY_SESSIONS: {
    key: 'stickySessions',
    default: false,
    good: [
      ['true', true],
      ['1', true],
      ['YES', true],
      ['on', true],
      ['false', false],
      ['0', false],
      ['off', false],
    ],
    bad: ['maybe', '2'],
    allowed: /true or false/,
  },
  STREAM_RESUME: {
    key: 'streamResume',
    default: false,
    good: [
      ['true', true],
      ['off', false],
    ],
    bad: ['resume'],
    allowed: /true or false/,
  },
  STICKY_TTL_SECS: { key: 'stickyTtlMs', default: 600_000, good: [['60', 60_000]], bad: ['0.5', '0', 'day'], allowed: /seconds from 1/ },
  SHUTDOWN_GRACE_SECS: {
    key: 'shutdownGraceMs',
    default: 10_000,
    good: [
      ['0', 0],
      ['1.5', 1500],
    ],
    bad: ['-1', 'now'],
    allowed: /seconds from 0/,
  },
  BUFFER_BUDGET_MB: {
    key: 'bufferBudgetMb',
    default: 256,
    good: [['1', 1]],
    bad: ['0', '-5', 'lots'],
    allowed: /integer from 1/,
  },
  CLIENT_WRITE_TIMEOUT_SECS: {
    key: 'clientWriteTimeoutMs',
    default: 60_000,
    good: [['0.5', 500]],
    bad: ['0', 'soon'],
    allowed: /seconds from 0.01/,
  },
  CORS_ORIGINS: {
    key: 'corsOrigins',
    default: [],
    good: [
      ['*', ['*']],
      ['https://a.example, http://localhost:3000', ['https://a.example', 'http://localhost:3000']],
    ],
    bad: [],
  },
  RESPONSES_TTL_SECS: {
    key: 'responsesTtlMs',
    default: 86_400_000,
    good: [['60', 60_000]],
    bad: ['0', 'forever'],
    allowed: /seconds from 1/,
  },
  LOG_LEVEL: {
    key: 'logLevel',
    default: 'info',
    good: [
      ['debug', 'debug'],
      ['WARN', 'warn'],
      ['silent', 'silent'],
    ],
    bad: ['verbose', 'loud'],
    allowed: /one of fatal, error, warn, info, debug, trace, silent/,
  },
  LOG_REQUESTS: {
    key: 'logRequests',
    default: true,
    good: [
      ['false', false],
      ['off', false],
      ['1', true],
    ],
    bad: ['sometimes'],
    allowed: /true or false/,
  },
  OTEL_EXPORTER_OTLP_ENDPOINT: {
    key: 'otelEndpoint',
    default: undefined,
    good: [
      ['http://127.0.0.1:4318', 'http://127.0.0.1:4318'],
      [' https://collector.example/otlp/ ', 'https://collector.example/otlp/'],
    ],
    bad: ['127.0.0.1:4318', 'grpc://collector:4317', 'http://'],
    allowed: /an http:\/\/ or https:\/\/ URL/,
  },
  OTEL_SERVICE_NAME: { key: 'otelServiceName', default: 'ai-lb-gateway', good: [['gateway-eu', 'gateway-eu']], bad: [] },
  NODE_PRIORITY: {
    key: 'nodePriority',
    default: new Map(),
    good: [
      [
        'GPU-1:8000=0; laptop:11434=10,[::1]:1234=1000',
        new Map([
          ['gpu-1:8000', 0],
          ['laptop:11434', 10],
          ['[::1]:1234', 1000],
        ]),
      ],
    ],
    bad: ['gpu-1=1', 'gpu-1:8000=-1', 'gpu-1:8000=1001', 'gpu-1:8000=first', 'gpu-1:8000='],
    allowed: /host:port=N \(0 to 1000, lower first\)/,
  },
  MODEL_SENTINELS: { key: 'modelSentinels', default: ['auto', 'default'], good: [['auto; any , ', ['auto', 'any']]], bad: [] },
  LM_MODEL: { key: 'lmModel', default: undefined, good: [[' qwen2.5-7b ', 'qwen2.5-7b']], bad: [] },
  PREFERRED_MODELS: { key: 'preferredModels', default: [], good: [['a,b;c', ['a', 'b', 'c']]], bad: [] },
  AUTO_MODEL_STRATEGY: {
    key: 'autoModelStrategy',
    default: 'any_first',
    good: [['INTERSECTION_FIRST', 'intersection_first']],
    bad: ['all'],
    allowed: /any_first, intersection_first/,
  },
  MODEL_ALIASES: {
    key: 'modelAliases',
    default: new Map(),
    good: [
      [
        'llama3.1-8b=llama3.1:8b|meta-llama/Llama-3.1-8B-Instruct|lmstudio-community/meta-llama-3.1-8b-instruct; qwen = qwen2.5:7b | Qwen/Qwen2.5-7B-Instruct',
        new Map([
          ['llama3.1-8b', ['llama3.1:8b', 'meta-llama/Llama-3.1-8B-Instruct', 'lmstudio-community/meta-llama-3.1-8b-instruct']],
          ['qwen', ['qwen2.5:7b', 'Qwen/Qwen2.5-7B-Instruct']],
        ]),
      ],
      ['solo=only', new Map([['solo', ['only']]])],
      ['dup=a|a|b', new Map([['dup', ['a', 'b']]])],
    ],
    bad: ['llama3', '=a|b', 'x=', 'x=a||b', 'x=a;x=b'],
    allowed: /public=id\|id… entries/,
  },
  REDIS_URL: {
    key: 'redisUrl',
    default: undefined,
    good: [
      ['redis://cache:6380/2', 'redis://cache:6380/2'],
      ['rediss://:pw@redis.example:6380', 'rediss://:pw@redis.example:6380'],
    ],
    bad: ['http://cache:6379', 'cache:6379', 'redis://cache:port'],
    allowed: /redis:\/\/ or rediss:\/\//,
  },
  REDIS_HOST: { key: 'redisHost', default: undefined, good: [['cache', 'cache']], bad: [] },
  REDIS_PORT: { key: 'redisPort', default: 6379, good: [['6380', 6380]], bad: ['0', '70000', 'redis'], allowed: /integer from 1 to 65535/ },
  REDIS_PASSWORD: { key: 'redisPassword', default: undefined, good: [['s3cret', 's3cret']], bad: [] },
  REDIS_KEY_PREFIX: { key: 'redisKeyPrefix', default: 'ai-lb:', good: [['tenant-a:', 'tenant-a:']], bad: [] },
  REDIS_TLS: { key: 'redisTls', default: false, good: [['true', true]], bad: ['tls'], allowed: /true or false/ },
  REDIS_SENTINELS: {
    key: 'redisSentinels',
    default: undefined,
    good: [
      [
        'sentinel-1:26380, 10.0.0.2;[::1]:26381',
        [
          { host: 'sentinel-1', port: 26380 },
          { host: '10.0.0.2', port: 26379 },
          { host: '::1', port: 26381 },
        ],
      ],
    ],
    bad: [',', 'sentinel-1:0', 'sentinel-1:65536', 'sentinel-1:port', '::1', 'redis://sentinel-1:26379'],
    allowed: /host:port entries separated by , or ; \(port 26379 when left out\)/,
  },
  REDIS_SENTINEL_NAME: { key: 'redisSentinelName', default: 'mymaster', good: [['cache-master', 'cache-master']], bad: [] },
  REDIS_SENTINEL_PASSWORD: { key: 'redisSentinelPassword', default: undefined, good: [['s3ntinel', 's3ntinel']], bad: [] },
  SCAN_HOSTS: {
    key: 'scanHosts',
    default: ['127.0.0.1'],
    good: [['10.0.0.0/24, gpu-1;[::1]:8080', ['10.0.0.0/24', 'gpu-1', '[::1]:8080']]],
    bad: [],
  },
  SCAN_PORTS: {
    key: 'scanPorts',
    default: [1234, 11434, 8080, 8000, 30000],
    good: [['8000-8002, 9000;8001', [8000, 8001, 8002, 9000]]],
    bad: ['0', '9000-8000', 'http', '70000', ',', '0x50'],
    allowed: /ports from 1 to 65535|at least one port/,
  },
  SCAN_INTERVAL: { key: 'scanIntervalSecs', default: 10, good: [['60', 60]], bad: ['0', '0.5'], allowed: /integer from 1/ },
  SCAN_CONCURRENCY: { key: 'scanConcurrency', default: 256, good: [['16', 16]], bad: ['0', '5000'], allowed: /integer from 1 to 4096/ },
  PROBE_TIMEOUT_MS: { key: 'probeTimeoutMs', default: 1500, good: [['200', 200]], bad: ['10', '60001'], allowed: /integer from 50/ },
  NODE_TTL_SECS: { key: 'nodeTtlSecs', default: undefined, good: [['45', 45]], bad: ['0', 'x'], allowed: /integer from 1/ },
  FLEET_STALE_LIMIT_SECS: {
    key: 'fleetStaleLimitMs',
    default: 3_600_000,
    good: [
      ['0', 0],
      ['300', 300_000],
      ['604800', 604_800_000],
    ],
    bad: ['-1', '604801', 'x'],
    allowed: /seconds from 0 to 604800/,
  },
  DEFAULT_MAXCONN: { key: 'defaultMaxconn', default: 0, good: [['4', 4]], bad: ['-1', 'four'], allowed: /integer from 0/ },
  MAXCONN_MAP: {
    key: 'maxconnMap',
    default: new Map(),
    good: [
      [
        'GPU-1:8080=4; [::1]:11434=2',
        new Map([
          ['gpu-1:8080', 4],
          ['[::1]:11434', 2],
        ]),
      ],
    ],
    bad: ['gpu-1=4', 'gpu-1:8080=x', 'gpu-1:99999=1', 'gpu-1:8080='],
    allowed: /host:port=N/,
  },
  MONITOR_PORT: { key: 'monitorPort', default: 8001, good: [['0', 0]], bad: ['65536'], allowed: /integer from 0 to 65535/ },
  LOAD_POLL_MS: {
    key: 'loadPollMs',
    default: 1000,
    good: [
      ['0', 0],
      ['250', 250],
      ['60000', 60_000],
    ],
    bad: ['1', '99', '60001', '-1', '0.5', 'fast'],
    allowed: /0 \(off\) or an integer from 100 to 60000/,
  },
  MONITOR_HOST: {
    key: 'monitorHost',
    default: '127.0.0.1',
    good: [
      ['0.0.0.0', '0.0.0.0'],
      [' ::1 ', '::1'],
    ],
    bad: [],
  },
  GATEWAY_API_KEYS: {
    key: 'gatewayApiKeys',
    default: [],
    good: [
      ['key-one-0123456789, key-two-0123456789;', ['key-one-0123456789', 'key-two-0123456789']],
      ['exactly-16-chars', ['exactly-16-chars']],
    ],
    bad: [',', ';', ' ', ' , ; ', 'short-key', 'key-one-0123456789,fifteen-chars!'],
    allowed: /keys of at least 16 characters/,
  },
  NODE_API_KEYS: {
    key: 'nodeApiKeys',
    default: new Map(),
    good: [['gpu-1:8080=sk-abc', new Map([['gpu-1:8080', 'sk-abc']])]],
    bad: ['gpu-1=sk-abc'],
    allowed: /host:port=key/,
  },
};

/** Variables whose values are keys: their bad values are not echoed (tested below). */
const SECRETS = new Set(['NODE_API_KEYS', 'GATEWAY_API_KEYS']);
/** Variables where only an empty value means unset; blanks are a (bad) value. */
const BLANK_IS_VALUE = new Set(['GATEWAY_API_KEYS']);

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('has a case for every variable of the schema', () => {
    expect(Object.keys(CASES).sort()).toEqual(
      Object.values(CONFIG_SCHEMA)
        .map((f) => f.env)
        .sort(),
    );
  });

  describe.each(Object.entries(CASES))('%s', (variable, c) => {
    it('default', () => {
      expect(loadConfig({})[c.key]).toEqual(c.default);
      expect(loadConfig({ [variable]: '' })[c.key]).toEqual(c.default);
      if (!BLANK_IS_VALUE.has(variable)) expect(loadConfig({ [variable]: '   ' })[c.key]).toEqual(c.default);
    });

    it.each(c.good)('accepts %j', (raw, parsed) => {
      expect(loadConfig({ [variable]: raw })[c.key]).toEqual(parsed);
    });

    // Free-text variables (names, keys, prefixes) have no bad value.
    if (c.bad.length > 0)
      it.each(c.bad)('rejects %j naming the variable, the value and what is allowed', (raw) => {
        const error = configError({ [variable]: raw });
        expect(error.message).not.toContain('\n');
        expect(error.message.startsWith(`${variable}=`)).toBe(true);
        if (!SECRETS.has(variable)) expect(error.message).toContain(JSON.stringify(raw.trim()).slice(1, -1));
        expect(error.message).toMatch(/is invalid: expected /);
        if (c.allowed) expect(error.message).toMatch(c.allowed);
      });
  });
});

describe('loadConfig derived values', () => {
  it('memory unless REDIS_URL or REDIS_HOST is set; URL built from host, port and password', () => {
    expect(loadConfig({})).toMatchObject({ redisConfigured: false, redisConnectionUrl: 'redis://localhost:6379' });
    expect(loadConfig({ REDIS_HOST: 'cache', REDIS_PORT: '6380', REDIS_PASSWORD: 'p@ss/w:rd' })).toMatchObject({
      redisConfigured: true,
      redisConnectionUrl: 'redis://:p%40ss%2Fw%3Ard@cache:6380',
    });
    expect(loadConfig({ REDIS_HOST: '::1' }).redisConnectionUrl).toBe('redis://[::1]:6379');
    expect(loadConfig({ REDIS_URL: 'rediss://h:1', REDIS_HOST: 'ignored' })).toMatchObject({
      redisConfigured: true,
      redisConnectionUrl: 'rediss://h:1',
    });
  });

  it('REDIS_TLS with REDIS_HOST builds a rediss:// URL; beside a redis:// REDIS_URL it is refused', () => {
    expect(loadConfig({ REDIS_HOST: 'cache', REDIS_TLS: 'true' }).redisConnectionUrl).toBe('rediss://cache:6379');
    expect(loadConfig({ REDIS_URL: 'rediss://cache:6380', REDIS_TLS: 'true' }).redisConnectionUrl).toBe('rediss://cache:6380');
    expect(configError({ REDIS_URL: 'redis://cache:6379', REDIS_TLS: 'true' }).message).toBe(
      'REDIS_TLS="true" is invalid: expected false beside a redis:// REDIS_URL (write rediss:// for TLS)',
    );
  });

  it('REDIS_SENTINELS: Redis is configured and found through the sentinels, with the master password and TLS', () => {
    expect(loadConfig({}).redisSentinel).toBeNull();
    expect(loadConfig({ REDIS_SENTINELS: 's1:26379' })).toMatchObject({
      redisConfigured: true,
      redisSentinel: { sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster', tls: false },
    });
    const config = loadConfig({
      REDIS_SENTINELS: 's1,s2:26380',
      REDIS_SENTINEL_NAME: 'cache',
      REDIS_PASSWORD: 'master-pw',
      REDIS_SENTINEL_PASSWORD: 'sentinel-pw',
      REDIS_TLS: 'yes',
    });
    expect(config.redisSentinel).toEqual({
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
      ],
      name: 'cache',
      password: 'master-pw',
      sentinelPassword: 'sentinel-pw',
      tls: true,
    });
  });

  it.each([
    [{ REDIS_URL: 'redis://:hunter2@cache:6379' }, 'REDIS_URL="redis://***@cache:6379"'],
    [{ REDIS_HOST: 'cache' }, 'REDIS_HOST="cache"'],
  ])('REDIS_SENTINELS beside %j is refused, not silently ignored', (env, shown) => {
    const error = configError({ REDIS_SENTINELS: 's1:26379', ...env });
    expect(error.message).toBe(
      `${shown} is invalid: expected unset when REDIS_SENTINELS is set ` +
        '(the sentinels name the master; its password is REDIS_PASSWORD, TLS is REDIS_TLS)',
    );
  });

  it('nodeTtlMs is NODE_TTL_SECS, else 3 × SCAN_INTERVAL', () => {
    expect(loadConfig({}).nodeTtlMs).toBe(30_000);
    expect(loadConfig({ SCAN_INTERVAL: '5' }).nodeTtlMs).toBe(15_000);
    expect(loadConfig({ SCAN_INTERVAL: '5', NODE_TTL_SECS: '7' }).nodeTtlMs).toBe(7000);
  });

  it('returns a frozen object', () => {
    expect(Object.isFrozen(loadConfig({}))).toBe(true);
  });
});

describe('secrets never reach an error message', () => {
  it('NODE_API_KEYS: keys are hidden, including a key that contains a separator', () => {
    const error = configError({ NODE_API_KEYS: 'gpu-1:8080=sk-live-111,sk-tail-222;badentry' });
    expect(error.message).toContain('gpu-1:8080=…');
    for (const secret of ['sk-live-111', 'sk-tail-222', 'badentry']) expect(error.message).not.toContain(secret);
  });

  it('GATEWAY_API_KEYS: a short key is refused without echoing any key', () => {
    const error = configError({ GATEWAY_API_KEYS: 'good-key-0123456789abc, tiny-secret' });
    expect(error.message).toBe(
      'GATEWAY_API_KEYS="…,…" is invalid: expected keys of at least 16 characters separated by , or ; ' +
        '(unset or empty: no keys, the gateway is open); key 2 has 11',
    );
    expect(error.message).not.toMatch(/good-key|tiny-secret/);
  });

  it.each([',', ';', ' ', '\t', ' ;, '])('GATEWAY_API_KEYS=%j holds no key: refused, not read as "auth off"', (raw) => {
    const error = configError({ GATEWAY_API_KEYS: raw });
    expect(error.message).not.toContain('\n');
    expect(error.message).toMatch(/^GATEWAY_API_KEYS=.* is invalid: expected keys of at least 16 characters .*this value holds no key$/);
  });

  it.each([
    ['http://user:hunter2@cache:6379', 'http://***@cache:6379'],
    ['user:hunter2@cache:6379', '***@cache:6379'],
    ['redis://:hun/ter2@cache:port', 'redis://***@cache:port'],
    ['redis://:a@b@cache:port', 'redis://***@cache:port'],
  ])('REDIS_URL %j is reported as %j', (raw, shown) => {
    const error = configError({ REDIS_URL: raw });
    expect(error.message).toContain(JSON.stringify(shown));
    expect(error.message).not.toMatch(/hunter2|hun\/ter2|a@b/);
  });

  it('redactUrl leaves a URL without credentials alone', () => {
    expect(redactUrl('redis://cache:6379')).toBe('redis://cache:6379');
  });
});
