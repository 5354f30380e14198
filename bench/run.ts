/**
 * `pnpm bench`: the performance instrument (SPEC "Performance"). Starts its own
 * fake upstreams, redis-server, the node floor, the http-proxy-middleware forwarder and the
 * gateway (memory and Redis stores), measures them in interleaved rounds, prints medians
 * and ratios. Everything it starts it stops, also on Ctrl-C, on errors and on its own
 * time bound. Only 127.0.0.1.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchUsageError, parseBenchOptions, v8Flags, type BenchOptions } from './bench-options.ts';
import { buildJsBundles } from './build-js-bundles.ts';
import { GC_PROBE_ARGS, useGcProbeDir } from './gc-window.ts';
import { describeMachine, formatReport } from './format-report.ts';
import { processUsageAvailable } from './process-usage.ts';
import { measureHeldRounds, runRound, warmUp, type RoundContext, type RoundResult } from './run-rounds.ts';
import { pickLoadGenerator } from './run-load.ts';
import { startBenchFleet } from './start-bench-fleet.ts';
import { gatewayAvailable, GATEWAY_ENTRIES } from './start-gateway.ts';
import { startTarget, type BenchTarget } from './start-target.ts';
import { checkIssueTargets, summarizeRounds } from './summarize-rounds.ts';
import { runStreamRounds, startStreamTargets } from './stream-phase.ts';
import { checkStreamTargets, formatStreamReport, summarizeStreamRounds } from './summarize-stream.ts';

const OUT_DIR = fileURLToPath(new URL('../.bench-out/', import.meta.url));
const log = (line: string) => void process.stderr.write(`${line}\n`);

/** Stops what was started, newest first, once, whichever way the run ends. */
function createCleanup() {
  const stops: Array<() => Promise<void>> = [];
  let running: Promise<void> | undefined;
  return {
    add: (stop: () => Promise<void>) => void stops.push(stop),
    run: () => (running ??= (async () => void (await Promise.allSettled(stops.reverse().map((stop) => stop()))))()),
  };
}

function timeBoundMs(options: BenchOptions, targets: number): number {
  const perRound = targets * (2 * options.durationSec + options.ttfbStreams * 0.01 + 5);
  // Streaming: up to 7 relays, a warm-up pass and the rounds, each opening the streams and draining them.
  const perStreamPass = 7 * (options.streamWindowSec + 4 + options.streams * 0.005);
  const streaming = options.phases.includes('stream') ? (options.rounds + 1) * perStreamPass : 0;
  return (90 + targets * 2 * options.warmupSec + options.rounds * perRound + streaming) * 2 * 1000;
}

/** A round that measured nothing (throughput phase left out): the held phase still has a place to write. */
function emptyRound(targets: readonly BenchTarget[]): RoundResult {
  const round: RoundResult = {};
  for (const target of targets) {
    round[target.name] = {
      rps: NaN,
      p50Ms: NaN,
      p99Ms: NaN,
      cpuUsPerReq: NaN,
      auxCpuUsPerReq: NaN,
      allocatedKbPerReq: NaN,
      promotedKbPerReq: NaN,
      ttfbP50Ms: NaN,
      slowP50Ms: NaN,
      slowP99Ms: NaN,
      errors: 0,
      held: null,
    };
  }
  return round;
}

async function startTargets(options: BenchOptions, cleanup: ReturnType<typeof createCleanup>) {
  if (options.gc) useGcProbeDir(join(OUT_DIR, 'gc'));
  const names = options.targets.filter((name) => {
    if (!name.startsWith('gateway') || gatewayAvailable()) return true;
    log(`skipping ${name}: ${Object.values(GATEWAY_ENTRIES).join(' or ')} does not exist yet`);
    return false;
  });
  const bundles = options.runtime === 'js' ? await buildJsBundles(join(OUT_DIR, 'js')) : undefined;
  if (bundles) log(`built plain-JS bundles of the forwarders in ${join(OUT_DIR, 'js')}`);
  const fleet = await startBenchFleet({
    upstreams: options.upstreams,
    redis: names.includes('gateway-redis') || names.includes('baseline-redis'),
    streamEventsPerSec: options.phases.includes('stream') ? options.eventsPerSec : 0,
    payload: options.payload,
    streamSurface: options.streamSurface,
  });
  cleanup.add(() => fleet.stop());
  for (const upstream of fleet.upstreams) log(`started upstream ${upstream.node} (pid ${upstream.pid})`);
  if (fleet.stream) log(`started stream upstream ${fleet.stream.url} (pid ${fleet.stream.pid})`);
  if (fleet.redis) log(`started redis-server ${fleet.redis.url} (pid ${fleet.redis.pid})`);
  // Started side by side (each is seconds of tsx start-up); every one that started is
  // registered for cleanup before a failure of another is reported.
  const started = await Promise.allSettled(
    names.map((name) => {
      // One folder per target: the profile files are named by pid and thread only.
      const nodeArgs = v8Flags(options);
      if (options.optimizeForSize) nodeArgs.push('--optimize-for-size');
      if (options.cpuProf) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${join(OUT_DIR, name)}`);
      if (options.gc) nodeArgs.push(...GC_PROBE_ARGS);
      return startTarget(name, fleet, {
        nodeArgs,
        bundles,
        baselineDir: options.baselineDir,
        baselineEnv: options.baselineEnv,
        maxconn: options.maxconn,
      });
    }),
  );
  const targets: BenchTarget[] = [];
  for (const result of started) {
    if (result.status === 'rejected') continue;
    const target = result.value;
    cleanup.add(() => target.stop());
    targets.push(target);
    if (target.pid !== null) log(`started ${target.name} ${target.baseUrl} (pid ${target.pid})`);
  }
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  const floorArgs = v8Flags(options);
  if (options.cpuProf) floorArgs.push('--cpu-prof', `--cpu-prof-dir=${join(OUT_DIR, 'stream-floor')}`);
  if (options.gc) floorArgs.push(...GC_PROBE_ARGS);
  const streamTargets = fleet.stream ? await startStreamTargets(fleet, targets, floorArgs, bundles, (stop) => cleanup.add(stop), log) : [];
  return { fleet, targets, streamTargets };
}

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseBenchOptions(process.argv.slice(2));
  } catch (error) {
    log(error instanceof BenchUsageError ? error.message : `pnpm bench: ${(error as Error).message}`);
    return 2;
  }
  if (!processUsageAvailable()) {
    log('pnpm bench reads CPU time and RSS from /proc: it runs on Linux only');
    return 2;
  }
  const generator = pickLoadGenerator(options.generator);
  const machine = describeMachine(['pnpm bench', ...process.argv.slice(2)].join(' '), generator);
  const cleanup = createCleanup();
  let aborting = false;
  const abort = (why: string, code: number) => {
    // A second Ctrl-C must not kill the bench before it has stopped its children.
    if (aborting) return;
    aborting = true;
    log(`pnpm bench: ${why}; stopping everything it started`);
    void cleanup.run().finally(() => process.exit(code));
  };
  process.on('SIGINT', () => abort('interrupted', 130));
  process.on('SIGTERM', () => abort('terminated', 143));
  const watchdog = setTimeout(() => abort('time bound exceeded', 1), timeBoundMs(options, options.targets.length));
  try {
    const { fleet, targets, streamTargets } = await startTargets(options, cleanup);
    const ctx: RoundContext = { targets, fleet, options, generator, log };
    const rounds: RoundResult[] = [];
    if (options.phases.includes('throughput')) {
      log(`warming up ${targets.map((t) => t.name).join(', ')}`);
      await warmUp(ctx);
      for (let round = 1; round <= options.rounds; round++) {
        log(`round ${round}/${options.rounds}`);
        rounds.push(await runRound(ctx, round));
      }
    } else {
      for (let round = 1; round <= options.rounds; round++) rounds.push(emptyRound(targets));
    }
    // The streaming phase before the held streams, for the same reason they come last.
    const streamRounds = fleet.stream ? await runStreamRounds(streamTargets, fleet.stream, options, log) : [];
    // After every throughput round, not inside them: 1,000 held streams grow every pool and
    // heap, and the round after them measured the gateway at up to 1.3× its CPU per request.
    if (options.phases.includes('held')) await measureHeldRounds(ctx, rounds);
    machine.loadAvgAfter = loadavg()[0];
    const summaries = summarizeRounds(
      rounds,
      targets.map((t) => t.name),
    );
    const checks = checkIssueTargets(summaries, options.phases.includes('held') ? options.heldStreams : 0);
    const streamSummaries = summarizeStreamRounds(
      streamRounds,
      streamTargets.map((t) => t.name),
    );
    const streamChecks = checkStreamTargets(streamSummaries);
    if (options.json) {
      const stream = { summaries: streamSummaries, checks: streamChecks, rounds: streamRounds };
      process.stdout.write(`${JSON.stringify({ machine, options, summaries, checks, rounds, stream }, null, 2)}\n`);
    } else {
      if (options.phases.includes('throughput') || options.phases.includes('held')) {
        process.stdout.write(`${formatReport(machine, options, summaries, checks)}\n`);
      }
      if (streamRounds.length > 0) {
        const setup = {
          streams: options.streams,
          eventsPerSec: options.eventsPerSec,
          windowSec: options.streamWindowSec,
          surface: options.streamSurface,
          rounds: options.rounds,
        };
        process.stdout.write(`\n${formatStreamReport(streamSummaries, streamChecks, setup)}\n`);
      }
    }
    if (options.cpuProf) log(`CPU profiles in ${OUT_DIR}<target>/ (npx tsx bench/summarize-cpu-profile.ts <file> --by total)`);
    return 0;
  } catch (error) {
    log(`pnpm bench failed: ${(error as Error).message}`);
    return 1;
  } finally {
    clearTimeout(watchdog);
    await cleanup.run();
  }
}

process.exit(await main());
