/**
 * Runs workloads × strategies: per workload one fleet of fake engines (their own
 * processes), per strategy one ai-lb (gateway + monitor, its own process, started the
 * way `pnpm start` runs), the trace replayed through it, the engines' counters read back.
 * Everything it starts it stops — on success, on error and when the time budget runs
 * out — and it returns every pid it started, so a caller can check.
 */
import { startFakeEngine, type FakeEngineProcess } from '@ai-lb/testkit';
import { startOutsideLoad, waitForOutsideLoad } from './outside-load.ts';
import { replayTrace } from './replay.ts';
import { startServices, type RunningServices } from './start-services.ts';
import type { BenchStrategy } from './strategies.ts';
import { emptyRow, summarize, type ResultRow } from './summarize.ts';
import type { Workload } from './workloads.ts';

export interface HarnessOptions {
  workloads: readonly Workload[];
  strategies: readonly BenchStrategy[];
  /** Trace length factor (1 = default, smaller for --quick). */
  scale: number;
  /** Runs that would start after this are reported as skipped. */
  budgetMs: number;
  log?: (line: string) => void;
}

export interface HarnessResult {
  rows: ResultRow[];
  /** Every process the harness started (engines and services). */
  pids: number[];
  durationMs: number;
}

/** Settings every run shares: wait for a slot rather than fail, bounded. */
const RUN_ENV = { QUEUE_TIMEOUT_MS: '30000', REQUEST_TIMEOUT_SECS: '60' };
/** After a reset, engine-aware strategies wait this long for readings of the new state to reach the gateway. */
const SIGNAL_SETTLE_MS = 2500;

export async function runRoutingBench(options: HarnessOptions): Promise<HarnessResult> {
  const log = options.log ?? (() => undefined);
  const started = performance.now();
  const pids: number[] = [];
  const rows: ResultRow[] = [];
  for (const workload of options.workloads) {
    const pending = options.strategies.filter((s) => s.implemented);
    for (const s of options.strategies) if (!s.implemented) rows.push(emptyRow(workload.name, s.name, 'not implemented'));
    if (pending.length === 0) continue;
    if (performance.now() - started > options.budgetMs) {
      for (const s of pending) rows.push(emptyRow(workload.name, s.name, 'skipped: time budget'));
      continue;
    }
    log(`${workload.name}: starting ${workload.engines.length} engines and ${pending.length} gateways`);
    rows.push(...(await runWorkload(workload, pending, options, started, pids, log)));
  }
  const order = new Map(options.strategies.map((s, i) => [s.name, i]));
  rows.sort((a, b) => (a.workload === b.workload ? order.get(a.strategy)! - order.get(b.strategy)! : 0));
  return { rows, pids, durationMs: performance.now() - started };
}

async function runWorkload(
  workload: Workload,
  strategies: readonly BenchStrategy[],
  options: HarnessOptions,
  started: number,
  pids: number[],
  log: (line: string) => void,
): Promise<ResultRow[]> {
  const engines: FakeEngineProcess[] = [];
  const services = new Map<string, Promise<RunningServices>>();
  const rows: ResultRow[] = [];
  try {
    const spawned = await Promise.allSettled(workload.engines.map((spec) => startFakeEngine(spec)));
    for (const result of spawned) if (result.status === 'fulfilled') engines.push(result.value);
    pids.push(...engines.map((e) => e.pid));
    const failedEngine = spawned.find((r) => r.status === 'rejected');
    if (failedEngine) throw (failedEngine as PromiseRejectedResult).reason;
    const nodes = engines.map((e) => e.node);
    // Every strategy's services start together: their startup overlaps instead of adding up.
    for (const strategy of strategies) {
      const starting = startServices({ nodes, models: workload.models, env: { ...RUN_ENV, ...workload.gatewayEnv, ...strategy.env } });
      starting.then((s) => pids.push(s.process.pid)).catch(() => undefined);
      services.set(strategy.name, starting);
    }
    // Measuring starts once every one is up: a gateway still starting would steal CPU from a run.
    await Promise.allSettled(services.values());
    for (const strategy of strategies) {
      if (performance.now() - started > options.budgetMs) {
        rows.push(emptyRow(workload.name, strategy.name, 'skipped: time budget'));
        continue;
      }
      try {
        const running = await services.get(strategy.name)!;
        rows.push(await runOne(workload, strategy, running, engines, options.scale));
        log(`${workload.name} × ${strategy.name}: done`);
      } catch (error) {
        rows.push(emptyRow(workload.name, strategy.name, `failed: ${(error as Error).message.split('\n')[0].slice(0, 120)}`));
      } finally {
        await stopServices(services.get(strategy.name)!);
      }
    }
  } finally {
    await Promise.allSettled([...services.values()].map(stopServices));
    await Promise.allSettled(engines.map((e) => e.stop()));
  }
  return rows;
}

async function runOne(
  workload: Workload,
  strategy: BenchStrategy,
  services: RunningServices,
  engines: readonly FakeEngineProcess[],
  scale: number,
): Promise<ResultRow> {
  await Promise.all(engines.map((e) => e.reset()));
  const outside = workload.outside;
  const client = outside ? startOutsideLoad(engines[outside.engine].url, workload.models[0], outside) : undefined;
  try {
    if (outside) await waitForOutsideLoad(() => engines[outside.engine].stats(), outside);
    if (strategy.env.LOAD_POLL_MS !== '0') await new Promise((resolve) => setTimeout(resolve, SIGNAL_SETTLE_MS));
    const { samples, wallMs } = await replayTrace(services.baseUrl, workload.trace(scale), { timeoutMs: 60_000 });
    const counters = await Promise.all(engines.map((e) => e.stats()));
    return summarize(workload.name, strategy.name, samples, wallMs, counters);
  } finally {
    await client?.stop();
  }
}

async function stopServices(starting: Promise<RunningServices>): Promise<void> {
  try {
    await (await starting).stop();
  } catch {
    // It never started: nothing to stop (spawnTsProcess kills a child that failed to get ready).
  }
}
