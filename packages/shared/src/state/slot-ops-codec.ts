/**
 * The argument layout of a SLOT_OPS call (redis-scripts.ts), written down once. The Lua
 * reads every key and argument through readers generated from the tables below (`ARGV[ao +
 * 4]` is `ACQUIRE_LUA.arg.leaseMs`), and the encoders write them in the same order.
 * slot-ops-codec.test.ts runs the generated readers in Redis on what the encoders wrote:
 * a field added to one side only fails it.
 *
 * A name ending in `[]` is a list with one entry per candidate (the Lua calls that count
 * `n`); the acquire op's optional keys follow its lists, each present only when the
 * request uses that feature.
 *
 * The encoders (redis-slot-ops.ts) write RESP text directly, one bulk string per value,
 * instead of handing ioredis an argument array: with two ops per request, ioredis'
 * per-argument work was the larger part of the gateway's Redis cost (docs/performance.md).
 */

/** ARGV of a call, before its ops. KEYS of a call: every op's keys, op after op. */
const CALL_ARGS = ['opCount', 'slotFreedChannel', 'fleetChangedChannel'] as const;
/** ARGV before each op's own args. */
const OP_HEADER = ['kind', 'keyCount', 'argCount'] as const;
const ACQUIRE_KEYS = ['slots[]', 'circuit[]'] as const;
/** After ACQUIRE_KEYS, in this order, each only when present (condition in ACQUIRE_LUA). */
const ACQUIRE_OPTIONAL_KEYS = ['rotate', 'sticky', 'queue', 'queueExpiry'] as const;
const ACQUIRE_ARGS = [
  'candidateCount',
  'order',
  'leaseId',
  'leaseMs',
  'probeLeaseMs',
  /** 0 = no sticky session. */
  'stickyTtlMs',
  'rotateTtlMs',
  'circuitTtlMs',
  'node[]',
  'maxconn[]',
  /** '' = no queue. */
  'ticket',
  /** 0 = no queue. */
  'ticketTtlMs',
  /** 1 / 0 */
  'join',
  /** least_loaded's ordering hints (SlotCandidate), 0 when absent. */
  'extraLoad[]',
  'slots[]',
  'tier[]',
] as const;
const RELEASE_KEYS = ['slots', 'circuit'] as const;
const RELEASE_ARGS = ['leaseId', 'outcome', 'probe', 'threshold', 'openMs', 'circuitTtlMs', 'node'] as const;

/** The op kinds, as the op header's `kind` carries them. */
export const OP_KIND = { acquire: 'a', release: 'r' } as const;
export type SlotOpKind = (typeof OP_KIND)[keyof typeof OP_KIND];

type FieldName<F extends string> = F extends `${infer Name}[]` ? Name : F;
/** Per field, the Lua expression that reads it: a string, or for a list a function of the Lua index. */
type LuaReaders<F extends string> = {
  readonly [K in F as FieldName<K>]: K extends `${string}[]` ? (index: string) => string : string;
};

/** `base + fixed + lists × n`, as Lua source. */
function luaOffset(base: string, fixed: number, lists: number): string {
  const terms = [base, fixed > 0 ? String(fixed) : '', lists === 1 ? 'n' : lists > 1 ? `${lists} * n` : ''];
  return terms.filter((t) => t !== '').join(' + ') || '0';
}

function luaReaders<const F extends readonly string[]>(table: 'KEYS' | 'ARGV', base: string, fields: F): LuaReaders<F[number]> {
  const readers: Record<string, string | ((index: string) => string)> = {};
  let fixed = 0;
  let lists = 0;
  for (const field of fields) {
    if (field.endsWith('[]')) {
      const before = luaOffset(base, fixed, lists);
      readers[field.slice(0, -2)] = (index) => `${table}[${before} + ${index}]`;
      lists++;
    } else {
      fixed++;
      readers[field] = `${table}[${luaOffset(base, fixed, lists)}]`;
    }
  }
  return readers as LuaReaders<F[number]>;
}

/** How many values a layout holds for n candidates. */
function countOf(fields: readonly string[], n: number): number {
  let count = 0;
  for (const field of fields) count += field.endsWith('[]') ? n : 1;
  return count;
}

const acquireArg = luaReaders('ARGV', 'ao', ACQUIRE_ARGS);

/** Lua for one call: its args (absolute) and each op's header (after `h`, the args read so far). */
export const CALL_LUA = {
  arg: luaReaders('ARGV', '', CALL_ARGS),
  /** ARGV index of the first op header is h + 1 for this h. */
  firstHeaderAfter: CALL_ARGS.length,
  header: luaReaders('ARGV', 'h', OP_HEADER),
  headerLength: OP_HEADER.length,
} as const;

/**
 * Lua for the acquire op whose keys start after KEYS[ko] and args after ARGV[ao].
 * `optionalKeys` declares the locals named in `optionalKeyNames` (rotateKey, stickyKey,
 * queueKey, queueExpiryKey; nil when absent); it needs `ko`, `ao` and `n`.
 */
export const ACQUIRE_LUA = {
  arg: acquireArg,
  key: luaReaders('KEYS', 'ko', ACQUIRE_KEYS),
  optionalKeyNames: ACQUIRE_OPTIONAL_KEYS.map((key) => `${key}Key`),
  optionalKeys: optionalKeysLua({
    rotate: `${acquireArg.order} == 'rotate'`,
    sticky: `${acquireArg.stickyTtlMs} ~= '0'`,
    queue: `${acquireArg.ticketTtlMs} ~= '0'`,
    queueExpiry: `${acquireArg.ticketTtlMs} ~= '0'`,
  }),
} as const;

/** Lua for the release op whose keys start after KEYS[ko] and args after ARGV[ao]. */
export const RELEASE_LUA = {
  arg: luaReaders('ARGV', 'ao', RELEASE_ARGS),
  key: luaReaders('KEYS', 'ko', RELEASE_KEYS),
} as const;

function optionalKeysLua(presentWhen: Record<(typeof ACQUIRE_OPTIONAL_KEYS)[number], string>): string {
  const lines = [
    `local ${ACQUIRE_OPTIONAL_KEYS.map((key) => `${key}Key`).join(', ')}`,
    `local nextKey = ${luaOffset('ko', 0, ACQUIRE_KEYS.length)}`,
  ];
  for (const key of ACQUIRE_OPTIONAL_KEYS) {
    lines.push(`if ${presentWhen[key]} then nextKey = nextKey + 1; ${key}Key = KEYS[nextKey] end`);
  }
  return lines.join('\n');
}

/** ARGV entries per op header, per call before its ops, and per op (fixed, and per candidate). */
export const OP_HEADER_LENGTH = OP_HEADER.length;
export const CALL_ARG_COUNT = CALL_ARGS.length;
export const ACQUIRE_ARG_COUNT_FIXED = countOf(ACQUIRE_ARGS, 0);
export const ACQUIRE_ARG_COUNT_PER_CANDIDATE = countOf(ACQUIRE_ARGS, 1) - ACQUIRE_ARG_COUNT_FIXED;
export const RELEASE_ARG_COUNT = countOf(RELEASE_ARGS, 0);
