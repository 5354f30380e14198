/** `pnpm bench` command line: defaults sized for ≈ 5 minutes on a 2-core machine (--quick: ≈ 75 s). */
import { parseArgs } from 'node:util';
import type { LoadGenerator } from './run-load.ts';
import { TARGET_NAMES, type TargetName } from './start-target.ts';
import { STREAM_SURFACES, type StreamSurface } from './stream-upstream.ts';

/** The parts of a run: closed-loop load (+ TTFB, 50 ms upstream), held streams, streaming. */
export const PHASES = ['throughput', 'held', 'stream'] as const;
export type Phase = (typeof PHASES)[number];

/** What the load sends and the upstreams answer (engine-payloads.ts). */
export const PAYLOADS = ['flat', 'engine'] as const;
export type Payload = (typeof PAYLOADS)[number];

export interface BenchOptions {
  rounds: number;
  /**
   * flat (default, every earlier row): "Say hello." in, a 200-byte answer and three-chunk
   * streams out. engine: a coding agent's 30 KB request, answers and stream chunks as vLLM,
   * llama.cpp, Ollama and OpenAI-compatible servers shape them.
   */
  payload: Payload;
  phases: Phase[];
  /**
   * Streaming phase: which API the streams speak — chat (default: OpenAI chat chunks) or
   * messages (Anthropic's Messages API, as Claude Code streams, from a vLLM that serves it).
   */
  streamSurface: StreamSurface;
  /** Streaming phase: concurrent streams, events per second each, seconds measured per target and round. */
  streams: number;
  eventsPerSec: number;
  streamWindowSec: number;
  /** Slot cap of every bench upstream (seeded records, DEFAULT_MAXCONN for the monitor); 0 = uncapped. */
  maxconn: number;
  /** Seconds of each closed-loop load run (non-stream, and 50 ms-upstream). */
  durationSec: number;
  connections: number;
  upstreams: number;
  targets: TargetName[];
  /** Streams per round for time to first byte, and how many run at once. */
  ttfbStreams: number;
  ttfbConcurrency: number;
  /** Concurrent open streams for the memory measurement; 0 = skip. */
  heldStreams: number;
  /** Measure held streams in every round (default) or only in the last one (--quick). */
  heldEveryRound: boolean;
  /** Upstream delay for the added-latency phase. */
  slowUpstreamMs: number;
  warmupSec: number;
  /** node --optimize-for-size for every forwarder (V8 favours a smaller heap over speed). */
  optimizeForSize: boolean;
  generator?: LoadGenerator;
  cpuProf: boolean;
  /** Count each forwarder's garbage per request in the throughput phase (bench/gc-probe.mjs). */
  gc: boolean;
  json: boolean;
  /** How the forwarders run: plain-JS bundles (default, build-js-bundles.ts) or .ts under tsx. */
  runtime: 'js' | 'tsx';
  /** V8 --max-semi-space-size (MB) of every forwarder alike; 0 = V8's default (16 MB). */
  semiSpaceMb: number;
  /** V8 --heap-growing-percent of every forwarder alike; 0 = V8's default. */
  heapGrowingPercent: number;
  /** V8's memory reducer in every forwarder alike (`--memory-reducer`; ai-lb ships without it). */
  memoryReducer: boolean;
  /** V8 --max-inlined-bytecode-size-cumulative of every forwarder alike; 0 = V8's default (920, what ai-lb ships). */
  inlineBudget: number;
  /**
   * `--baseline DIR`: another build's bundles (`pnpm build`'s dist/ of an earlier commit),
   * measured as baseline-memory / baseline-redis in the same rounds: before/after in one run.
   */
  baselineDir?: string;
  /**
   * `--baseline-env KEY=VALUE,…`: settings the baseline-* targets run with (this build's
   * bundles unless --baseline DIR): one setting A/B in the same rounds, e.g. LOG_REQUESTS=false.
   */
  baselineEnv?: Record<string, string>;
}

/**
 * The V8 settings ai-lb ships with (Dockerfile, docker-compose.yml, `pnpm start*`; checked by
 * shipped-node-flags.test.ts) and the bench's defaults, so the bench measures what runs:
 * - 8 MB semi-spaces: V8's default grows the young generation to 3 × 16 MB under load;
 *   smaller semi-spaces scavenge more often, and each scavenge copies the in-flight
 *   requests' objects; 8 MB is the trade between that CPU and RSS with open streams;
 * - heap growing 20 %: the old generation may grow 1.2× past what survived the last full GC
 *   (V8's default lets it grow up to 4×); the same CPU, less RSS with open streams;
 * - no memory reducer: V8 runs memory-reducing full collections once a process has allocated
 *   little for a few seconds, and the first seconds of the next burst then cost every
 *   forwarder more per request; a service's quiet spells are not when it should shrink, and
 *   its heap is small (what it keeps idle is the price);
 * - V8's own inlining budget: a larger one (`pnpm bench --inline-budget 3000`) did not
 *   reliably pay for the code it adds.
 * All measured in docs/performance.md.
 */
export const SHIPPED_V8 = { semiSpaceMb: 8, heapGrowingPercent: 20, memoryReducer: false, inlineBudget: 0 } as const;

/** The node command-line flags of these settings (0 = V8's default, no flag). */
export function v8Flags(settings: {
  semiSpaceMb: number;
  heapGrowingPercent: number;
  memoryReducer: boolean;
  inlineBudget: number;
}): string[] {
  const flags: string[] = [];
  if (settings.semiSpaceMb > 0) flags.push(`--max-semi-space-size=${settings.semiSpaceMb}`);
  if (settings.heapGrowingPercent > 0) flags.push(`--heap-growing-percent=${settings.heapGrowingPercent}`);
  if (!settings.memoryReducer) flags.push('--no-memory-reducer');
  if (settings.inlineBudget > 0) flags.push(`--max-inlined-bytecode-size-cumulative=${settings.inlineBudget}`);
  return flags;
}

export const USAGE = `usage: pnpm bench [--quick] [--json] [--rounds N] [--duration S] [--connections C]
                  [--phases ${PHASES.join(',')}] [--payload ${PAYLOADS.join('|')}] [--stream-surface ${STREAM_SURFACES.join('|')}] [--streams N] [--events-per-sec M] [--stream-seconds S] [--maxconn N]
                  [--targets ${TARGET_NAMES.join(',')}] [--upstreams N]
                  [--ttfb-streams N] [--held-streams N] [--generator wrk|autocannon] [--cpu-prof] [--gc]
                  [--runtime js|tsx] [--semi-space-mb N] [--heap-growing-percent N] [--memory-reducer] [--inline-budget N] [--optimize-for-size] [--warmup S]
                  [--baseline DIR]   (DIR: an earlier build's dist/, measured beside this one)
                  [--baseline-env KEY=VALUE,...]   (the baseline-* targets run with these settings)`;

export function parseBenchOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      upstreams: { type: 'string' },
      targets: { type: 'string' },
      'ttfb-streams': { type: 'string' },
      'held-streams': { type: 'string' },
      phases: { type: 'string' },
      payload: { type: 'string' },
      'stream-surface': { type: 'string' },
      streams: { type: 'string' },
      'events-per-sec': { type: 'string' },
      'stream-seconds': { type: 'string' },
      maxconn: { type: 'string' },
      generator: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      gc: { type: 'boolean', default: false },
      runtime: { type: 'string' },
      'semi-space-mb': { type: 'string' },
      'heap-growing-percent': { type: 'string' },
      warmup: { type: 'string' },
      'optimize-for-size': { type: 'boolean', default: false },
      'memory-reducer': { type: 'boolean', default: false },
      'inline-budget': { type: 'string' },
      baseline: { type: 'string' },
      'baseline-env': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) throw new BenchUsageError(USAGE);
  const quick = values.quick!;
  return {
    rounds: intOption('--rounds', values.rounds, quick ? 1 : 3, 1, 50),
    phases: phasesOption(values.phases),
    payload: payloadOption(values.payload),
    streamSurface: streamSurfaceOption(values['stream-surface']),
    // 500 × 20 events/s: a busy model server's worth of tokens; 1,000 streams saturate 2 cores.
    streams: intOption('--streams', values.streams, quick ? 100 : 500, 1, 5000),
    eventsPerSec: intOption('--events-per-sec', values['events-per-sec'], 20, 1, 200),
    maxconn: intOption('--maxconn', values.maxconn, 0, 0, 100_000),
    streamWindowSec: intOption('--stream-seconds', values['stream-seconds'], quick ? 2 : 4, 1, 120),
    durationSec: intOption('--duration', values.duration, quick ? 1 : 3, 1, 600),
    connections: intOption('--connections', values.connections, 50, 1, 5000),
    upstreams: intOption('--upstreams', values.upstreams, 2, 1, 16),
    targets: withBaselines(targetsOption(values.targets), values.baseline !== undefined || values['baseline-env'] !== undefined),
    ttfbStreams: intOption('--ttfb-streams', values['ttfb-streams'], quick ? 50 : 300, 1, 100_000),
    ttfbConcurrency: 1,
    heldStreams: intOption('--held-streams', values['held-streams'], 1000, 0, 10_000),
    heldEveryRound: !quick,
    slowUpstreamMs: 50,
    // Unrecorded load per forwarder before round 1. With 1 s the gateway's round 1 cost up to
    // 1.5× its CPU per request of later rounds (it gets cheaper for ≈ 20 s of load: JIT
    // tier-up and heap growth of a larger program than the floor); 8 s keeps the default run
    // under 3 minutes. See docs/performance.md "Method".
    warmupSec: intOption('--warmup', values.warmup, quick ? 1 : 8, 0, 600),
    generator: generatorOption(values.generator),
    cpuProf: values['cpu-prof']!,
    gc: values.gc!,
    json: values.json!,
    runtime: runtimeOption(values.runtime),
    optimizeForSize: values['optimize-for-size']!,
    semiSpaceMb: intOption('--semi-space-mb', values['semi-space-mb'], SHIPPED_V8.semiSpaceMb, 0, 256),
    heapGrowingPercent: intOption('--heap-growing-percent', values['heap-growing-percent'], SHIPPED_V8.heapGrowingPercent, 0, 300),
    memoryReducer: values['memory-reducer']!,
    inlineBudget: intOption('--inline-budget', values['inline-budget'], SHIPPED_V8.inlineBudget, 0, 100_000),
    baselineDir: values.baseline,
    baselineEnv: envOption(values['baseline-env']),
  };
}

/** With a baseline, each gateway target measured is measured again as the baseline (bundles, settings). */
function withBaselines(targets: TargetName[], baseline: boolean): TargetName[] {
  if (!baseline) return targets.filter((t) => !t.startsWith('baseline-'));
  const wanted = new Set<TargetName>(targets);
  if (wanted.has('gateway-memory')) wanted.add('baseline-memory');
  if (wanted.has('gateway-redis')) wanted.add('baseline-redis');
  return TARGET_NAMES.filter((t) => wanted.has(t));
}

export class BenchUsageError extends Error {}

function intOption(flag: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new BenchUsageError(`${flag} ${raw}: expected an integer from ${min} to ${max}\n${USAGE}`);
  }
  return value;
}

function targetsOption(raw: string | undefined): TargetName[] {
  if (raw === undefined) return [...TARGET_NAMES];
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !(TARGET_NAMES as readonly string[]).includes(n));
  if (unknown.length > 0 || names.length === 0) {
    throw new BenchUsageError(`--targets ${raw}: expected some of ${TARGET_NAMES.join(',')}\n${USAGE}`);
  }
  // Ratios are against direct and the node floor, so both always run.
  return TARGET_NAMES.filter((n) => n === 'direct' || n === 'node-floor' || names.includes(n));
}

/** KEY=VALUE pairs separated by commas; keys are environment variable names. */
function envOption(raw: string | undefined): Record<string, string> | undefined {
  if (raw === undefined) return undefined;
  const env: Record<string, string> = {};
  for (const pair of raw.split(',').filter((p) => p.trim() !== '')) {
    const match = /^\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(pair);
    if (match === null) throw new BenchUsageError(`--baseline-env ${raw}: expected KEY=VALUE pairs separated by commas\n${USAGE}`);
    env[match[1]] = match[2].trim();
  }
  if (Object.keys(env).length === 0) throw new BenchUsageError(`--baseline-env ${raw}: expected at least one KEY=VALUE\n${USAGE}`);
  return env;
}

function phasesOption(raw: string | undefined): Phase[] {
  if (raw === undefined) return [...PHASES];
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !(PHASES as readonly string[]).includes(n));
  if (unknown.length > 0 || names.length === 0)
    throw new BenchUsageError(`--phases ${raw}: expected some of ${PHASES.join(',')}\n${USAGE}`);
  return PHASES.filter((p) => names.includes(p));
}

function payloadOption(raw: string | undefined): Payload {
  if (raw === undefined) return 'flat';
  if ((PAYLOADS as readonly string[]).includes(raw)) return raw as Payload;
  throw new BenchUsageError(`--payload ${raw}: expected ${PAYLOADS.join(' or ')}\n${USAGE}`);
}

function streamSurfaceOption(raw: string | undefined): StreamSurface {
  if (raw === undefined) return 'chat';
  if ((STREAM_SURFACES as readonly string[]).includes(raw)) return raw as StreamSurface;
  throw new BenchUsageError(`--stream-surface ${raw}: expected ${STREAM_SURFACES.join(' or ')}\n${USAGE}`);
}

function runtimeOption(raw: string | undefined): 'js' | 'tsx' {
  if (raw === undefined || raw === 'js' || raw === 'tsx') return raw ?? 'js';
  throw new BenchUsageError(`--runtime ${raw}: expected js or tsx\n${USAGE}`);
}

function generatorOption(raw: string | undefined): LoadGenerator | undefined {
  if (raw === undefined || raw === 'wrk' || raw === 'autocannon') return raw;
  throw new BenchUsageError(`--generator ${raw}: expected wrk or autocannon\n${USAGE}`);
}
