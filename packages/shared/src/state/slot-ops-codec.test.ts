import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { redisKeys } from '../redis-keys.ts';
import type { AcquireSlotRequest, ReleaseSlotRequest } from './state-store.ts';
import { bulk, encodeAcquire, encodeRelease, SlotOpBatch, type NodeResp } from './redis-slot-ops.ts';
import { ACQUIRE_LUA, CALL_LUA, OP_KIND, RELEASE_LUA } from './slot-ops-codec.ts';

/**
 * The encoders (TypeScript) and the Lua readers of SLOT_OPS come from one layout; this
 * checks them against each other in Redis itself: a call is encoded as the store does,
 * then a script built from the same readers as SLOT_OPS reads every op back by name. A
 * field added to one side only moves or leaves over a value, and the comparison fails.
 */
const keys = redisKeys('codec:');
const respOf = (node: string): NodeResp => ({ slots: bulk(keys.slots(node)), circuit: bulk(keys.circuit(node)), node: bulk(node) });
let redis: Redis;

beforeAll(() => {
  redis = new Redis(inject('redisUrl'));
});
afterAll(async () => {
  await redis.quit();
});

type AcquireArgs = { [K in keyof typeof ACQUIRE_LUA.arg]: string | string[] };
type ReleaseArgs = { [K in keyof typeof RELEASE_LUA.arg]: string };
interface EchoedOp {
  kind: string;
  args: Record<string, string | string[]>;
  keys: Record<string, string | string[]>;
  /** The op's own ARGV and KEYS, in order, as Redis received them. */
  argv: string[];
  keyv: string[];
}

/** A RESP array of bulk strings (what SlotOpBatch writes) back into its values. */
function parseCommand(text: string): string[] {
  const bytes = Buffer.from(text);
  const values: string[] = [];
  let at = bytes.indexOf('\r\n');
  const count = Number(bytes.subarray(1, at).toString());
  at += 2;
  for (let i = 0; i < count; i++) {
    const end = bytes.indexOf('\r\n', at);
    const length = Number(bytes.subarray(at + 1, end).toString());
    values.push(bytes.subarray(end + 2, end + 2 + length).toString());
    at = end + 2 + length + 2;
  }
  expect(at).toBe(bytes.length);
  return values;
}

/** Lua that walks a SLOT_OPS call with SLOT_OPS' own readers and answers every op's fields by name. */
function echoScript(): string {
  const list = (read: (index: string) => string) => `(function() local t = {} for i = 1, n do t[i] = ${read('i')} end return t end)()`;
  const table = (readers: Record<string, string | ((index: string) => string)>) =>
    `{ ${Object.entries(readers)
      .map(([name, read]) => `${name} = ${typeof read === 'string' ? read : list(read)}`)
      .join(', ')} }`;
  const optional = ACQUIRE_LUA.optionalKeyNames.map((name) => `${name} = ${name}`).join(', ');
  return `
local ops = {}
local ko, h = 0, ${CALL_LUA.firstHeaderAfter}
for op = 1, tonumber(${CALL_LUA.arg.opCount}) do
  local kind, nk, na = ${CALL_LUA.header.kind}, tonumber(${CALL_LUA.header.keyCount}), tonumber(${CALL_LUA.header.argCount})
  local ao = h + ${CALL_LUA.headerLength}
  local n = 0
  local echoed = { kind = kind, argv = {}, keyv = {} }
  for i = 1, na do echoed.argv[i] = ARGV[ao + i] end
  for i = 1, nk do echoed.keyv[i] = KEYS[ko + i] end
  if kind == '${OP_KIND.acquire}' then
    n = tonumber(${ACQUIRE_LUA.arg.candidateCount})
    ${ACQUIRE_LUA.optionalKeys}
    echoed.args = ${table(ACQUIRE_LUA.arg)}
    local listed = ${table(ACQUIRE_LUA.key)}
    echoed.keys = { ${optional} }
    for name, value in pairs(listed) do echoed.keys[name] = value end
  else
    echoed.args = ${table(RELEASE_LUA.arg)}
    echoed.keys = ${table(RELEASE_LUA.key)}
  end
  ops[op] = echoed
  ko, h = ko + nk, ao + na
end
return cjson.encode({ opCount = ${CALL_LUA.arg.opCount}, channel = ${CALL_LUA.arg.slotFreedChannel}, fleetChannel = ${CALL_LUA.arg.fleetChangedChannel}, ops = ops })
`;
}

/** Encodes the ops into one call as the store does, runs the echo script on it in Redis. */
async function echo(ops: ({ acquire: AcquireSlotRequest } | { release: ReleaseSlotRequest })[]) {
  let command = '';
  const batch = new SlotOpBatch(
    async (text) => {
      command = text;
      return [];
    },
    'sha-of-the-script',
    { slotFreed: 'codec:slot-freed', fleetChanged: 'codec:fleet-changed' },
    (_kind, message) => new Error(message),
  );
  for (const op of ops) {
    if ('acquire' in op) void batch.add(OP_KIND.acquire, encodeAcquire(op.acquire, op.acquire.candidates, respOf, keys), () => null);
    else void batch.add(OP_KIND.release, encodeRelease(op.release, respOf(op.release.node)), () => null);
  }
  batch.flush();
  const [evalsha, sha, keyCount, ...rest] = parseCommand(command);
  expect([evalsha, sha]).toEqual(['EVALSHA', 'sha-of-the-script']);
  const reply = await redis.eval(echoScript(), Number(keyCount), ...rest);
  return JSON.parse(reply as string) as { opCount: string; channel: string; fleetChannel: string; ops: EchoedOp[] };
}

/** Every value an op's readers read, in layout order: must be exactly the op's own ARGV / KEYS. */
function inLayoutOrder(named: Record<string, string | string[]>, order: string[]): string[] {
  return order.flatMap((name) => (named[name] === undefined ? [] : named[name]));
}

const acquireEverything: AcquireSlotRequest = {
  candidates: [
    { node: 'a:1', maxconn: 3, extraLoad: 2, slots: 4, tier: 1001 },
    { node: 'b:1', maxconn: 0, tier: 5 },
    { node: 'c:1', maxconn: 7, extraLoad: 0, slots: 8 },
  ],
  order: 'rotate',
  rotateKey: 'modèle',
  leaseId: 'lease-1',
  leaseMs: 1111,
  probeLeaseMs: 2222,
  sticky: { key: 'modèle:session', ttlMs: 3333 },
  queue: { key: 'modèle', ticket: 'ticket-1', ttlMs: 4444, join: true },
};
const acquirePlain: AcquireSlotRequest = {
  candidates: [{ node: 'd:1', maxconn: 1 }],
  order: 'least_loaded',
  leaseId: 'lease-2',
  leaseMs: 5555,
  probeLeaseMs: 6666,
};
const releaseOne: ReleaseSlotRequest = {
  node: 'b:1',
  leaseId: 'lease-0',
  outcome: 'failure',
  probe: true,
  breaker: { threshold: 4, ttlMs: 7777 },
};

describe('SLOT_OPS layout: what the encoders write is what the Lua reads', () => {
  it('a call of an acquire with every option, a release and a plain acquire', async () => {
    const call = await echo([{ acquire: acquireEverything }, { release: releaseOne }, { acquire: acquirePlain }]);
    expect(call).toMatchObject({ opCount: '3', channel: 'codec:slot-freed', fleetChannel: 'codec:fleet-changed' });
    const [everything, release, plain] = call.ops;

    const everythingArgs: AcquireArgs = {
      candidateCount: '3',
      order: 'rotate',
      leaseId: 'lease-1',
      leaseMs: '1111',
      probeLeaseMs: '2222',
      stickyTtlMs: '3333',
      rotateTtlMs: String(24 * 3600 * 1000),
      circuitTtlMs: String(24 * 3600 * 1000),
      node: ['a:1', 'b:1', 'c:1'],
      maxconn: ['3', '0', '7'],
      ticket: 'ticket-1',
      ticketTtlMs: '4444',
      join: '1',
      extraLoad: ['2', '0', '0'],
      slots: ['4', '0', '8'],
      tier: ['1001', '5', '0'],
    };
    expect(everything).toMatchObject({ kind: OP_KIND.acquire, args: everythingArgs });
    expect(everything.keys).toEqual({
      slots: ['a:1', 'b:1', 'c:1'].map((n) => keys.slots(n)),
      circuit: ['a:1', 'b:1', 'c:1'].map((n) => keys.circuit(n)),
      rotateKey: keys.roundRobin('modèle'),
      stickyKey: keys.sticky('modèle:session'),
      queueKey: keys.queue('modèle'),
      queueExpiryKey: keys.queueExpiry('modèle'),
    });

    const releaseArgs: ReleaseArgs = {
      leaseId: 'lease-0',
      outcome: 'failure',
      probe: '1',
      threshold: '4',
      openMs: '7777',
      circuitTtlMs: String(24 * 3600 * 1000),
      node: 'b:1',
    };
    expect(release).toMatchObject({
      kind: OP_KIND.release,
      args: releaseArgs,
      keys: { slots: keys.slots('b:1'), circuit: keys.circuit('b:1') },
    });

    const plainArgs: AcquireArgs = {
      ...everythingArgs,
      candidateCount: '1',
      order: 'least_loaded',
      leaseId: 'lease-2',
      leaseMs: '5555',
      probeLeaseMs: '6666',
      stickyTtlMs: '0',
      node: ['d:1'],
      maxconn: ['1'],
      ticket: '',
      ticketTtlMs: '0',
      join: '0',
      extraLoad: ['0'],
      slots: ['0'],
      tier: ['0'],
    };
    expect(plain).toMatchObject({ kind: OP_KIND.acquire, args: plainArgs });
    expect(plain.keys).toEqual({ slots: [keys.slots('d:1')], circuit: [keys.circuit('d:1')] });
  });

  it('the readers cover each op exactly: no value left over, none read twice or out of place', async () => {
    const call = await echo([{ acquire: acquireEverything }, { acquire: acquirePlain }, { release: releaseOne }]);
    const acquireKeyOrder = [...Object.keys(ACQUIRE_LUA.key), ...ACQUIRE_LUA.optionalKeyNames];
    for (const op of call.ops) {
      const acquire = op.kind === OP_KIND.acquire;
      const argOrder = Object.keys(acquire ? ACQUIRE_LUA.arg : RELEASE_LUA.arg);
      expect(inLayoutOrder(op.args, argOrder)).toEqual(op.argv);
      expect(inLayoutOrder(op.keys, acquire ? acquireKeyOrder : Object.keys(RELEASE_LUA.key))).toEqual(op.keyv);
    }
  });

  it('redis-scripts.ts reads an op only through the codec readers (no offsets written by hand)', () => {
    const source = readFileSync(new URL('./redis-scripts.ts', import.meta.url), 'utf8');
    expect(source.match(/(ARGV|KEYS)\[\s*(ao|ko|h|a|k)\b[^\]]*\]/g) ?? []).toEqual([]);
  });
});
