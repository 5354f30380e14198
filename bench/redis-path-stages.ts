/**
 * Where a request's time goes on the Redis path, stage by stage:
 * `npx tsx bench/redis-path-stages.ts [seconds] [connections] [upstreamMs]` (10, 50, 50).
 *
 * Runs the gateway in this process (createGateway, as `pnpm start:gateway` builds it: the
 * resilient Redis store) three ways — memory state, Redis state with uncapped nodes,
 * Redis state with capped nodes (maxconn 10,000: never full, every attempt leases a slot)
 * — each under the same wrk load (c=connections, upstreams answering after upstreamMs), and
 * reports per variant:
 *  - added latency: p50 / p99 minus the upstream's own (wrk straight at the upstream);
 *  - the event loop's delay (monitorEventLoopDelay, 1 ms resolution) during the load;
 *  - acquire: from acquireSlot's call to its answer, split into the batching wait (call →
 *    the SLOT_OPS command handed to ioredis), the round trip (→ its reply parsed) and the
 *    rest (→ the caller's continuation);
 *  - Redis: µs per SLOT_OPS call inside redis-server (INFO commandstats), ops per call;
 *  - the background: pub/sub messages received, lease renewals, fleet refreshes
 *    (listFleet), in-flight reports (shareInflight), outcome reports — count and ms.
 * Everything it starts it stops. Only 127.0.0.1.
 */
import { execFileSync } from 'node:child_process';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import {
  loadConfig,
  MemoryStateStore,
  RedisStateStore,
  ResilientStateStore,
  silentLogger,
  type NodeState,
  type StateStore,
} from '@ai-lb/shared';
import { startFakeLlmServer, startRedis, type FakeLlmProcess, type RedisServer } from '@ai-lb/testkit';
import { createGateway } from '../packages/gateway/src/create-gateway.ts';
import { percentile } from './percentile.ts';
import { runWrk } from './wrk-load.ts';

const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 50);
const upstreamMs = Number(process.argv[4] ?? 50);
const MODEL = 'bench-model';
const BODY = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 16 });
/** Store calls timed by the proxy: what a request or the background asks of the store. */
const TIMED = ['acquireSlot', 'releaseSlot', 'renewLeases', 'listFleet', 'getCircuits', 'getInflight', 'shareInflight', 'recordOutcomes'];

interface Variant {
  name: string;
  redis: boolean;
  maxconn: number;
}
const VARIANTS: Variant[] = [
  { name: 'memory', redis: false, maxconn: 0 },
  { name: 'redis, uncapped', redis: true, maxconn: 0 },
  { name: 'redis, capped', redis: true, maxconn: 10_000 },
];

/** Samples (ms) per store method, and the acquire stages. */
class StageClock {
  readonly calls = new Map<string, number[]>();
  readonly batchWait: number[] = [];
  readonly roundTrip: number[] = [];
  readonly acquire: number[] = [];
  /** Per request (Exchange times): arrival → sent upstream, → upstream answer complete, → response closed. */
  readonly beforeUpstream: number[] = [];
  readonly upstream: number[] = [];
  readonly afterUpstream: number[] = [];
  slotOpsCalls = 0;
  pubsubMessages = 0;
  /** acquireSlot calls not yet in a SLOT_OPS command: their call times. */
  private unsent: number[] = [];

  record(method: string, ms: number): void {
    const list = this.calls.get(method) ?? [];
    list.push(ms);
    this.calls.set(method, list);
  }

  acquireCalled(at: number): void {
    this.unsent.push(at);
  }

  slotOpsSent(at: number): void {
    for (const calledAt of this.unsent) this.batchWait.push(at - calledAt);
    this.unsent = [];
    this.slotOpsCalls++;
  }
}

/** The store as the gateway sees it, each timed call recorded. */
function timedStore(store: StateStore, clock: StageClock): StateStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop !== 'string' || !TIMED.includes(prop) || typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const startedAt = performance.now();
        if (prop === 'acquireSlot') clock.acquireCalled(startedAt);
        const result = (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        return result.finally(() => {
          const ms = performance.now() - startedAt;
          clock.record(prop, ms);
          if (prop === 'acquireSlot') clock.acquire.push(ms);
        });
      };
    },
  });
}

/** What this tool reads of the store's ioredis connections (private fields: a diagnostic's licence). */
interface RedisCommandLike {
  name: string;
  args: unknown[];
  promise: Promise<unknown>;
}
interface RedisClientLike {
  sendCommand(command: RedisCommandLike, ...rest: unknown[]): unknown;
}
interface RedisStoreInternals {
  client: RedisClientLike;
  subscriber?: { on(event: 'message', listener: () => void): void };
}

/** Times each SLOT_OPS command (an EVALSHA whose RESP text the store wrote itself) from hand-over to reply. */
function timeSlotOps(client: RedisClientLike, clock: StageClock): void {
  const send = client.sendCommand.bind(client);
  client.sendCommand = (command: RedisCommandLike, ...rest: unknown[]) => {
    if (command.name === 'evalsha' && command.args.length === 0) {
      const sentAt = performance.now();
      clock.slotOpsSent(sentAt);
      command.promise.then(
        () => clock.roundTrip.push(performance.now() - sentAt),
        () => undefined,
      );
    }
    return send(command, ...rest);
  };
}

function nodeState(upstream: FakeLlmProcess, maxconn: number): NodeState {
  const now = Date.now();
  return {
    node: upstream.node,
    host: '127.0.0.1',
    port: upstream.port,
    kind: 'openai',
    healthy: true,
    models: [MODEL],
    loadedModels: [],
    maxconn,
    capacitySource: maxconn > 0 ? 'map' : 'default',
    detectedMaxconn: null,
    latencyMs: 1,
    lastSeenMs: now,
    checkedAtMs: now,
    error: null,
    serverLoad: null,
  };
}

function commandStats(redis: RedisServer): { calls: number; usec: number } {
  const info = execFileSync('redis-cli', ['-u', redis.url, 'INFO', 'commandstats'], { encoding: 'utf8' });
  const match = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(info);
  return match ? { calls: Number(match[1]), usec: Number(match[2]) } : { calls: 0, usec: 0 };
}

async function measure(variant: Variant, upstreams: FakeLlmProcess[], redis: RedisServer, directP50: number, directP99: number) {
  const clock = new StageClock();
  const keyPrefix = `stages:${variant.name.replace(/\W+/g, '-')}:`;
  const env: Record<string, string> = { LOAD_BALANCER_PORT: '0', LOAD_BALANCER_HOST: '127.0.0.1', REDIS_KEY_PREFIX: keyPrefix };
  if (variant.redis) env.REDIS_URL = redis.url;
  const config = loadConfig(env);
  let inner: StateStore;
  let internals: RedisStoreInternals | undefined;
  if (variant.redis) {
    const remote = new RedisStateStore({ url: redis.url, keyPrefix, log: silentLogger });
    await remote.ping();
    internals = remote as unknown as RedisStoreInternals;
    timeSlotOps(internals.client, clock);
    inner = new ResilientStateStore({ remote });
  } else {
    inner = new MemoryStateStore();
  }
  const store = timedStore(inner, clock);
  for (const upstream of upstreams) await store.putNode(nodeState(upstream, variant.maxconn), 3_600_000);
  const gateway = await createGateway({ config, store });
  // Each request's own timeline, read from its Exchange when the router reports it.
  const metrics = gateway.services.metrics;
  const recordRequest = metrics.recordRequest.bind(metrics);
  metrics.recordRequest = (exchange) => {
    const closedAt = performance.now();
    if (exchange.upstreamStartAt !== null && exchange.upstreamEndAt !== null) {
      clock.beforeUpstream.push(exchange.upstreamStartAt - exchange.startedAt);
      clock.upstream.push(exchange.upstreamEndAt - exchange.upstreamStartAt);
      clock.afterUpstream.push(closedAt - exchange.upstreamEndAt);
    }
    recordRequest(exchange);
  };
  // The fleet cache subscribed at start: count what arrives on that connection.
  internals?.subscriber?.on('message', () => clock.pubsubMessages++);
  try {
    const port = await gateway.listen(0, '127.0.0.1');
    const url = `http://127.0.0.1:${port}/v1/chat/completions`;
    await runWrk({ url, body: BODY, connections, durationSec: Math.min(5, seconds) }); // warm-up
    for (const list of [clock.batchWait, clock.roundTrip, clock.acquire, clock.beforeUpstream, clock.upstream, clock.afterUpstream]) {
      list.length = 0;
    }
    clock.calls.clear();
    clock.slotOpsCalls = 0;
    clock.pubsubMessages = 0;
    const before = commandStats(redis);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const cpuBefore = process.cpuUsage();
    const load = await runWrk({ url, body: BODY, connections, durationSec: seconds });
    const cpu = process.cpuUsage(cpuBefore);
    delay.disable();
    const after = commandStats(redis);
    const ms = (ns: number) => (ns / 1e6).toFixed(2);
    const p = (list: number[], q: number) => (list.length === 0 ? '—' : percentile(list, q).toFixed(2));
    const lines = [
      `${variant.name}: ${Math.round(load.requestsPerSec)} req/s, +p50 ${(load.p50Ms - directP50).toFixed(2)} ms, +p99 ${(load.p99Ms - directP99).toFixed(2)} ms, ` +
        `${Math.round(((cpu.user + cpu.system) / load.requests) * 1) / 1} µs CPU/req (gateway + this bench's instruments), errors ${load.errors}`,
      `  event-loop delay: p50 ${ms(delay.percentile(50))} ms, p99 ${ms(delay.percentile(99))} ms, max ${ms(delay.max)} ms`,
      `  request: arrival → upstream p50 ${p(clock.beforeUpstream, 50)} / p99 ${p(clock.beforeUpstream, 99)} ms, ` +
        `upstream p50 ${p(clock.upstream, 50)} / p99 ${p(clock.upstream, 99)} ms, ` +
        `answer → closed p50 ${p(clock.afterUpstream, 50)} / p99 ${p(clock.afterUpstream, 99)} ms`,
    ];
    if (clock.acquire.length > 0) {
      lines.push(
        `  acquire: p50 ${p(clock.acquire, 50)} / p99 ${p(clock.acquire, 99)} ms = batching wait p50 ${p(clock.batchWait, 50)} ms` +
          ` + round trip p50 ${p(clock.roundTrip, 50)} / p99 ${p(clock.roundTrip, 99)} ms + continuation`,
      );
    } else lines.push('  acquire: none (every attempt placed without the store)');
    const calls = after.calls - before.calls;
    if (calls > 0) {
      lines.push(
        `  redis-server: ${((after.usec - before.usec) / calls).toFixed(1)} µs per EVALSHA inside Redis, ${calls} calls, ` +
          `${clock.slotOpsCalls > 0 ? (clock.acquire.length / clock.slotOpsCalls).toFixed(1) : '—'} acquires per SLOT_OPS call`,
      );
    }
    const background = ['releaseSlot', 'renewLeases', 'listFleet', 'getCircuits', 'getInflight', 'shareInflight', 'recordOutcomes']
      .map((name) => [name, clock.calls.get(name) ?? []] as const)
      .filter(([, list]) => list.length > 0)
      .map(([name, list]) => `${name} ${list.length}× p50 ${p(list, 50)} ms`);
    lines.push(`  store calls: ${background.join(', ') || 'none'}; pub/sub messages ${clock.pubsubMessages}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await gateway.close(1000);
    await inner.close();
  }
}

async function main(): Promise<void> {
  const upstreams: FakeLlmProcess[] = [];
  let redis: RedisServer | undefined;
  try {
    for (let i = 0; i < 2; i++) upstreams.push(await startFakeLlmServer({ models: [MODEL] }));
    redis = await startRedis();
    await Promise.all(upstreams.map((u) => u.configure({ latencyMs: upstreamMs })));
    const direct = await runWrk({ url: `${upstreams[0].url}/v1/chat/completions`, body: BODY, connections, durationSec: seconds });
    process.stdout.write(
      `direct (upstream answers after ${upstreamMs} ms, wrk -c${connections} ${seconds} s): ` +
        `p50 ${direct.p50Ms.toFixed(2)} ms, p99 ${direct.p99Ms.toFixed(2)} ms\n`,
    );
    for (const variant of VARIANTS) await measure(variant, upstreams, redis, direct.p50Ms, direct.p99Ms);
  } finally {
    await Promise.allSettled([...upstreams.map((u) => u.stop()), redis?.stop()]);
  }
}

await main();
process.exit(0);
