/**
 * Interleaved rounds: every round measures every target once per phase, in turn (every
 * other round in reverse), so slow drift on a shared machine (other processes, thermal, GC
 * of long-lived targets) lands on all targets alike and per-round ratios stay meaningful.
 *
 * Phases of a round, each over all targets: (1) non-stream load + CPU per request, and
 * stream time to first byte, with instant upstreams; (2) the same load with a 50 ms
 * upstream (added latency); (3) RSS with N streams held open.
 */
import type { BenchOptions, Payload } from './bench-options.ts';
import { agentChatBody } from './engine-payloads.ts';
import { measureHeldStreams, type HeldStreamsResult } from './measure-held-streams.ts';
import { measureTtfb } from './measure-ttfb.ts';
import { closeGcWindow, openGcWindow } from './gc-window.ts';
import { readCpuMs } from './process-usage.ts';
import { runLoad, type LoadGenerator } from './run-load.ts';
import { BENCH_MODEL, HELD_STREAM_MODEL, type BenchFleet } from './start-bench-fleet.ts';
import type { BenchTarget, TargetName } from './start-target.ts';

export interface TargetRound {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU of the forwarding process per completed request (NaN for direct). */
  cpuUsPerReq: number;
  /** CPU of helper processes (redis-server) per request; NaN when there are none. */
  auxCpuUsPerReq: number;
  /** KB the forwarding process allocated, and promoted to its old generation, per request (--gc; else NaN). */
  allocatedKbPerReq: number;
  promotedKbPerReq: number;
  ttfbP50Ms: number;
  slowP50Ms: number;
  slowP99Ms: number;
  /** Failed requests or streams in any phase: a round with errors measured the wrong thing. */
  errors: number;
  held: HeldStreamsResult | null;
}

export type RoundResult = Partial<Record<TargetName, TargetRound>>;

const flatBody = (model: string, stream: boolean) =>
  JSON.stringify({ model, messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 16, stream });

/** The request of the throughput phases: `--payload engine` sends a coding agent's (held streams stay small: they measure memory per stream). */
function requestBody(payload: Payload, stream: boolean): string {
  return payload === 'engine' ? agentChatBody(BENCH_MODEL, stream) : flatBody(BENCH_MODEL, stream);
}
const CHAT_PATH = '/v1/chat/completions';

export interface RoundContext {
  targets: BenchTarget[];
  fleet: BenchFleet;
  options: BenchOptions;
  generator: LoadGenerator;
  /** Progress lines for humans (stderr). */
  log(line: string): void;
}

/**
 * Unrecorded load on every target, so round 1 does not pay for warm-up (JIT tier-up, heap
 * growth). The forwarders get --warmup seconds each; `direct` (the upstream, already warm
 * from the others' load) one second at most.
 */
export async function warmUp({ targets, fleet, options, generator }: RoundContext) {
  await fleet.setLatencyMs(0);
  for (const target of targets) {
    const url = target.baseUrl + CHAT_PATH;
    const durationSec = target.pid === null ? Math.min(1, options.warmupSec) : options.warmupSec;
    if (durationSec > 0)
      await runLoad(generator, {
        url,
        body: requestBody(options.payload, false),
        connections: options.connections,
        durationSec,
      });
    await measureTtfb({ url, body: requestBody(options.payload, true), streams: 50, concurrency: 4 });
  }
  await fleet.resetStats();
}

/**
 * The order of round `round` (from 1): even rounds reversed. A target measured right after
 * another shares the cores with whatever that one still does once its load stopped, so
 * none may always come second (gateway-redis always followed gateway-memory).
 */
export function roundOrder<T>(targets: readonly T[], round: number): readonly T[] {
  return round % 2 === 0 ? [...targets].reverse() : targets;
}

export async function runRound(ctx: RoundContext, round = 1): Promise<RoundResult> {
  const { fleet, options } = ctx;
  const targets = roundOrder(ctx.targets, round);
  const result: RoundResult = {};
  await fleet.setLatencyMs(0);
  for (const target of targets) result[target.name] = await measureFast(ctx, target);
  await fleet.setLatencyMs(options.slowUpstreamMs);
  for (const target of targets) await measureSlow(ctx, target, result[target.name]!);
  await fleet.setLatencyMs(0);
  await fleet.resetStats();
  return result;
}

/**
 * The held-streams phase, once per round (or only for the last one, --quick), run after all
 * throughput rounds; each measurement is stored in its round's result.
 */
export async function measureHeldRounds(ctx: RoundContext, rounds: RoundResult[]): Promise<void> {
  const { targets, fleet, options } = ctx;
  if (options.heldStreams === 0) return;
  for (const [i, result] of rounds.entries()) {
    if (!options.heldEveryRound && i < rounds.length - 1) continue;
    ctx.log(`held streams ${i + 1}/${rounds.length}`);
    for (const target of targets) {
      if (target.pid !== null) result[target.name]!.held = await measureHeld(ctx, target);
    }
    await fleet.resetStats();
  }
}

async function measureFast({ fleet, options, generator, log }: RoundContext, target: BenchTarget): Promise<TargetRound> {
  const url = target.baseUrl + CHAT_PATH;
  const countGarbage = options.gc && target.pid !== null;
  if (countGarbage) openGcWindow(target.pid!);
  const cpuBefore = cpuOf(target);
  const load = await runLoad(generator, {
    url,
    body: requestBody(options.payload, false),
    connections: options.connections,
    durationSec: options.durationSec,
  });
  const cpuAfter = cpuOf(target);
  const garbage = countGarbage ? await closeGcWindow(target.pid!, load.requests) : null;
  const ttfb = await measureTtfb({
    url,
    body: requestBody(options.payload, true),
    streams: options.ttfbStreams,
    concurrency: options.ttfbConcurrency,
  });
  await fleet.resetStats();
  const perReq = (ms: number) => (load.requests > 0 ? (ms * 1000) / load.requests : NaN);
  log(
    `  ${target.name.padEnd(15)} ${Math.round(load.requestsPerSec)} req/s  p50 ${load.p50Ms.toFixed(2)} ms  ttfb ${ttfb.p50Ms.toFixed(2)} ms`,
  );
  return {
    rps: load.requestsPerSec,
    p50Ms: load.p50Ms,
    p99Ms: load.p99Ms,
    cpuUsPerReq: target.pid === null ? NaN : perReq(cpuAfter.main - cpuBefore.main),
    auxCpuUsPerReq: target.auxPids.length === 0 ? NaN : perReq(cpuAfter.aux - cpuBefore.aux),
    allocatedKbPerReq: garbage?.allocatedKb ?? NaN,
    promotedKbPerReq: garbage?.promotedKb ?? NaN,
    ttfbP50Ms: ttfb.p50Ms,
    slowP50Ms: NaN,
    slowP99Ms: NaN,
    errors: load.errors + ttfb.errors,
    held: null,
  };
}

async function measureSlow({ options, generator, log }: RoundContext, target: BenchTarget, into: TargetRound) {
  const url = target.baseUrl + CHAT_PATH;
  const load = await runLoad(generator, {
    url,
    body: requestBody(options.payload, false),
    connections: options.connections,
    durationSec: options.durationSec,
  });
  into.slowP50Ms = load.p50Ms;
  into.slowP99Ms = load.p99Ms;
  into.errors += load.errors;
  log(
    `  ${target.name.padEnd(15)} ${options.slowUpstreamMs} ms upstream: p50 ${load.p50Ms.toFixed(2)} ms  p99 ${load.p99Ms.toFixed(2)} ms`,
  );
}

async function measureHeld({ fleet, options, log }: RoundContext, target: BenchTarget): Promise<HeldStreamsResult> {
  const held = await measureHeldStreams({
    url: target.baseUrl + CHAT_PATH,
    body: flatBody(HELD_STREAM_MODEL, true),
    count: options.heldStreams,
    pid: target.pid!,
    upstreamInflight: () => fleet.inflight(),
  });
  const released = Number.isNaN(held.releasedMs) ? 'NOT released within 10 s' : `released in ${held.releasedMs} ms`;
  log(
    `  ${target.name.padEnd(15)} ${held.opened}/${options.heldStreams} streams open: RSS ${held.rssMb.toFixed(0)} MB (idle ${held.rssIdleMb.toFixed(0)} MB), upstream ${released}`,
  );
  return held;
}

function cpuOf(target: BenchTarget): { main: number; aux: number } {
  return {
    main: target.pid === null ? 0 : readCpuMs(target.pid),
    aux: target.auxPids.reduce((sum, pid) => sum + readCpuMs(pid), 0),
  };
}
