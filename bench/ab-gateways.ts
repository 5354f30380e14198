/**
 * Interleaved A/B of gateway variants — builds, settings, V8 flags — against the node floor,
 * non-stream chat, CPU per request from /proc and requests per second from wrk:
 *
 *   npx tsx bench/ab-gateways.ts '<variants JSON>' [rounds=6] [seconds=4] [--gc] [--paired] [--idle S]
 *
 * A variant: {"name": "new", "store": "memory" | "redis" | "floor", "dir": "<a dist/>",
 * "env": {"LOG_REQUESTS": "false"}, "nodeArgs": ["--max-semi-space-size=8"], "maxconn": 0,
 * "entry": "start" | "gateway"} (`entry`: the service to run, by default `start` for memory
 * state and `gateway` for Redis; `start` with Redis runs the monitor in the process).
 * `dir` defaults to this checkout's dist/ (run `pnpm build` first), `nodeArgs` to the shipped
 * V8 flags. The first variant is the reference of the ratios. Rounds alternate the order
 * of the variants; the medians are printed. Where `pnpm bench --baseline` compares two
 * builds, this compares any number of variants in one run (the machine's noise is shared).
 *
 * --gc also counts each variant's garbage per request in every run (bench/gc-probe.mjs:
 * bytes allocated and promoted, young bytes alive after a scavenge, the GC pause) — figures
 * that hardly move with the machine's load, so a change too small for CPU time to show can
 * still be measured.
 *
 * --paired loads every variant at the same time in each round, each with its share of the
 * 50 connections: whatever else the machine does then costs all of them alike, where in
 * turns it lands on whichever variant runs at that moment. CPU is then the forwarding
 * process's alone (a shared redis-server cannot be split between variants).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { SHIPPED_V8, v8Flags } from './bench-options.ts';
import { buildJsBundles } from './build-js-bundles.ts';
import { closeGcWindow, GC_PROBE_ARGS, type GcPerRequest, openGcWindow, useGcProbeDir } from './gc-window.ts';
import { median } from './percentile.ts';
import { readCpuMs } from './process-usage.ts';
import { BENCH_MODEL, startBenchFleet } from './start-bench-fleet.ts';
import { type GatewayEntry, startGateway } from './start-gateway.ts';
import { startTarget } from './start-target.ts';
import { runWrk } from './wrk-load.ts';

interface Variant {
  name: string;
  store: 'memory' | 'redis' | 'floor';
  dir?: string;
  env?: Record<string, string>;
  nodeArgs?: string[];
  maxconn?: number;
  entry?: GatewayEntry;
}

interface Running {
  variant: Variant;
  url: string;
  /** The forwarding process and, for Redis state, redis-server: their CPU is the variant's. */
  pids: number[];
  stop(): Promise<void>;
}

const DIST = fileURLToPath(new URL('../dist', import.meta.url));
const BUNDLE_DIR = fileURLToPath(new URL('../.bench-out/ab-js', import.meta.url));
const BODY = JSON.stringify({ model: BENCH_MODEL, messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 16 });

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { gc: { type: 'boolean', default: false }, paired: { type: 'boolean', default: false }, idle: { type: 'string' } },
    allowPositionals: true,
  });
  const { gc, paired } = values as { gc: boolean; paired: boolean };
  const idleSec = Number(values.idle ?? 0);
  if (!(idleSec >= 0 && idleSec <= 600)) throw new Error('--idle S: seconds from 0 to 600');
  const [json, roundsArg, secondsArg] = positionals;
  if (json === undefined)
    throw new Error("usage: npx tsx bench/ab-gateways.ts '<variants JSON>' [rounds] [seconds] [--gc] [--paired] [--idle S]");
  const variants = JSON.parse(json) as Variant[];
  const rounds = Number(roundsArg ?? 6);
  const seconds = Number(secondsArg ?? 4);
  // The probe writes its window's counts here, one file per process (inherited by every variant).
  const gcDir = gc ? mkdtempSync(join(tmpdir(), 'ai-lb-gc-')) : null;
  if (gcDir !== null) useGcProbeDir(gcDir);
  const fleet = await startBenchFleet({ upstreams: 2, redis: variants.some((v) => v.store === 'redis') });
  const running: Running[] = [];
  try {
    const bundles = variants.some((v) => v.store === 'floor') ? await buildJsBundles(BUNDLE_DIR) : null;
    for (const variant of variants) running.push(await start(variant, fleet, bundles, gc));
    const cpu = new Map<string, number[]>();
    const rps = new Map<string, number[]>();
    const garbage = new Map<string, GcPerRequest[]>();
    for (const r of running) await runWrk({ url: `${r.url}/v1/chat/completions`, body: BODY, connections: 50, durationSec: 3 });
    const connections = paired ? Math.max(1, Math.floor(50 / running.length)) : 50;
    /** One variant's run, from its counters before to after; `load` is its wrk run. */
    const measure = async (r: Running) => {
      if (idleSec > 0 && !paired) await sleep(idleSec * 1000);
      const pids = paired ? r.pids.slice(0, 1) : r.pids;
      const before = cpuOf(pids);
      if (gcDir !== null) openGcWindow(r.pids[0]);
      const load = await runWrk({ url: `${r.url}/v1/chat/completions`, body: BODY, connections, durationSec: seconds });
      const perRequest = ((cpuOf(pids) - before) * 1000) / load.requests;
      push(cpu, r.variant.name, perRequest);
      push(rps, r.variant.name, load.requestsPerSec);
      let gcNote = '';
      if (gcDir !== null) {
        const counted = await closeGcWindow(r.pids[0], load.requests);
        push(garbage, r.variant.name, counted);
        gcNote = ` ${counted.allocatedKb.toFixed(1)} KB`;
      }
      return `${r.variant.name} ${perRequest.toFixed(0)} µs ${Math.round(load.requestsPerSec)}/s${gcNote}`;
    };
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? running : [...running].reverse();
      const line: string[] = [];
      if (paired && idleSec > 0) await sleep(idleSec * 1000);
      if (paired) line.push(...(await Promise.all(order.map(measure))));
      else for (const r of order) line.push(await measure(r));
      console.log(`round ${round + 1}: ${line.join(' | ')}`);
      await fleet.resetStats();
    }
    const reference = variants[0].name;
    const refCpu = median(cpu.get(reference)!);
    const refRps = median(rps.get(reference)!);
    for (const { name } of variants) {
      const c = median(cpu.get(name)!);
      const q = median(rps.get(name)!);
      console.log(
        `${name.padEnd(16)} CPU ${c.toFixed(0)} µs/req (÷${reference} ${(c / refCpu).toFixed(2)})  ${Math.round(q)} req/s (÷${reference} ${(q / refRps).toFixed(2)})`,
      );
      const counted = garbage.get(name);
      if (counted !== undefined) {
        const m = (pick: (g: GcPerRequest) => number) => median(counted.map(pick));
        console.log(
          `${''.padEnd(16)} GC: allocated ${m((g) => g.allocatedKb).toFixed(1)} KB/req, promoted ${m((g) => g.promotedKb).toFixed(2)} KB/req, ` +
            `alive after a scavenge ${m((g) => g.survivedKb).toFixed(0)} KB, pause ${m((g) => g.pauseUs).toFixed(1)} µs/req`,
        );
      }
    }
  } finally {
    for (const r of running) await r.stop();
    await fleet.stop();
    if (gcDir !== null) rmSync(gcDir, { recursive: true, force: true });
  }
}

async function start(
  variant: Variant,
  fleet: Awaited<ReturnType<typeof startBenchFleet>>,
  bundles: Awaited<ReturnType<typeof buildJsBundles>> | null,
  gc: boolean,
): Promise<Running> {
  const nodeArgs = [...(variant.nodeArgs ?? v8Flags(SHIPPED_V8)), ...(gc ? GC_PROBE_ARGS : [])];
  if (variant.store === 'floor') {
    const target = await startTarget('node-floor', fleet, { nodeArgs, bundles: bundles ?? undefined });
    return { variant, url: target.baseUrl, pids: [target.pid!], stop: () => target.stop() };
  }
  const dir = variant.dir ?? DIST;
  const gateway = await startGateway(variant.store, fleet, {
    nodeArgs,
    env: variant.env,
    maxconn: variant.maxconn,
    entry: variant.entry,
    bundles: { start: `${dir}/start.mjs`, gateway: `${dir}/gateway.mjs` },
  });
  const pids = [gateway.process.pid];
  if (variant.store === 'redis' && fleet.redis) pids.push(fleet.redis.pid);
  return { variant, url: gateway.baseUrl, pids, stop: () => gateway.process.stop() };
}

function cpuOf(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + readCpuMs(pid), 0);
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

await main();
