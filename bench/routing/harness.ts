/**
 * Runs workloads × strategies. One fleet holds every selected workload's fake engines
 * (each its own process; workloads are told apart by model name), and one ai-lb per
 * strategy (gateway + monitor in one process, started the way `pnpm start` runs) scans all
 * of them: every process starts once, which is what keeps the matrix within its bound on a
 * small machine. Per workload and strategy: the workload's engines are reset, its trace is
 * replayed through that strategy's gateway, the engines' counters are read back.
 * Everything it starts it stops — on success, on error and when the time budget runs out —
 * and it returns every pid it started, so a caller can check.
 */
import { startFakeEngine, type FakeEngineProcess } from '@ai-lb/testkit';
import { countAvoidableLoads, watchLoads } from './load-watch.ts';
import { startOutsideLoad, waitForOutsideLoad } from './outside-load.ts';
import { replayTrace } from './replay.ts';
import { prepareRuntime, type RuntimeKind } from './runtime.ts';
import { startServices, type RunningServices } from './start-services.ts';
import type { BenchStrategy } from './strategies.ts';
import { emptyRow, summarize, type ResultRow } from './summarize.ts';
import type { Session, Workload } from './workloads.ts';

export interface HarnessOptions {
  workloads: readonly Workload[];
  strategies: readonly BenchStrategy[];
  /** Trace length factor (1 = default, smaller for --quick). */
  scale: number;
  /** Runs that would start after this are reported as skipped. */
  budgetMs: number;
  /** Bundles (default) or tsx: see runtime.ts. */
  runtime?: RuntimeKind;
  log?: (line: string) => void;
}

export interface HarnessResult {
  rows: ResultRow[];
  /** Every process the harness started (engines and services). */
  pids: number[];
  durationMs: number;
}

/**
 * Settings every run shares: wait for a slot rather than fail, bounded; and discovery
 * probes patient enough that a node is not missed while 18 processes start at once on a
 * small machine (a missed node waits a whole SCAN_INTERVAL for the next scan).
 */
const RUN_ENV = { QUEUE_TIMEOUT_MS: '30000', REQUEST_TIMEOUT_SECS: '60', PROBE_TIMEOUT_MS: '5000' };
/**
 * After a reset (and once the outside load is on), an engine-aware gateway is measured only
 * once it routes on readings taken since: a reading of the previous run's state (another
 * model loaded, no outside queue) would send the first requests wrong, which no real fleet
 * sees. Bounded: past this, the run goes on with what the gateway has.
 */
const FRESH_READINGS_TIMEOUT_MS = 10_000;
/** Requests per model sent through each fresh gateway before anything is measured. */
const WARM_UP_REQUESTS = 4;

interface Fleet {
  engines: Map<Workload, FakeEngineProcess[]>;
  services: Map<BenchStrategy, RunningServices>;
}

export async function runRoutingBench(options: HarnessOptions): Promise<HarnessResult> {
  const log = options.log ?? (() => undefined);
  const started = performance.now();
  const pids: number[] = [];
  const rows: ResultRow[] = [];
  const strategies = options.strategies;
  if (strategies.length > 0 && options.workloads.length > 0) {
    const runtime = await prepareRuntime(options.runtime ?? 'bundle');
    const fleet: Fleet = { engines: new Map(), services: new Map() };
    try {
      await startFleet(fleet, options.workloads, strategies, runtime, pids, log);
      log(`fleet and ${strategies.length} gateways up after ${seconds(performance.now() - started)}`);
      for (const workload of options.workloads) {
        for (const strategy of strategies) {
          if (performance.now() - started > options.budgetMs) {
            rows.push(emptyRow(workload.name, strategy.name, 'skipped: time budget'));
            continue;
          }
          const runStarted = performance.now();
          const { row, note } = await runOne(workload, strategy, fleet, options.scale);
          rows.push(row);
          log(`${workload.name} × ${strategy.name}: ${seconds(performance.now() - runStarted)}${note}`);
        }
      }
    } catch (error) {
      const reason = `failed: ${(error as Error).message.split('\n')[0].slice(0, 400)}` as const;
      const done = new Set(rows.map((r) => `${r.workload}\n${r.strategy}`));
      for (const w of options.workloads)
        for (const s of strategies) if (!done.has(`${w.name}\n${s.name}`)) rows.push(emptyRow(w.name, s.name, reason));
    } finally {
      await Promise.allSettled([...fleet.services.values()].map((s) => s.stop()));
      await Promise.allSettled([...fleet.engines.values()].flat().map((e) => e?.stop()));
      runtime.cleanup();
    }
  }
  const workloadOrder = new Map(options.workloads.map((w, i) => [w.name, i]));
  const strategyOrder = new Map(options.strategies.map((s, i) => [s.name, i]));
  rows.sort(
    (a, b) =>
      workloadOrder.get(a.workload)! - workloadOrder.get(b.workload)! || strategyOrder.get(a.strategy)! - strategyOrder.get(b.strategy)!,
  );
  return { rows, pids, durationMs: performance.now() - started };
}

async function startFleet(
  fleet: Fleet,
  workloads: readonly Workload[],
  strategies: readonly BenchStrategy[],
  runtime: Awaited<ReturnType<typeof prepareRuntime>>,
  pids: number[],
  log: (line: string) => void,
): Promise<void> {
  log(`starting ${workloads.reduce((n, w) => n + w.engines.length, 0)} engines and ${strategies.length} gateways`);
  const bundle = runtime.engineBundle ?? undefined;
  await settleAll(
    workloads.flatMap((workload) => {
      // Indexed as in the workload (outside load names an engine by index); filled as each starts, so a
      // failure elsewhere still leaves every started engine where the caller stops it.
      const engines: FakeEngineProcess[] = [];
      fleet.engines.set(workload, engines);
      return workload.engines.map(async (spec, i) => {
        engines[i] = await startFakeEngine(spec, { bundle });
        pids.push(engines[i].pid);
      });
    }),
  );
  const nodes = workloads.flatMap((w) => fleet.engines.get(w)!.map((e) => e.node));
  const maxconnMap = workloads.flatMap((w) => (w.maxconn === undefined ? [] : fleet.engines.get(w)!.map((e) => `${e.node}=${w.maxconn}`)));
  const models = workloads.flatMap((w) => w.models);
  const eligible = workloads.flatMap((w) => w.models.map((model) => ({ model, nodes: fleet.engines.get(w)!.map((e) => e.node) })));
  await settleAll(
    strategies.map(async (strategy) => {
      const env = { ...RUN_ENV, MAXCONN_MAP: maxconnMap.join(','), ...strategy.env };
      const services = await startServices({ nodes, models: eligible, env, bundle: runtime.servicesBundle, readyTimeoutMs: 120_000 });
      pids.push(services.process.pid);
      fleet.services.set(strategy, services);
    }),
  );
  // A fresh process is slow on its first requests (JIT, pools): warm every gateway alike.
  await Promise.all([...fleet.services.values()].map((s) => replayTrace(s.baseUrl, warmUpTrace(models), { timeoutMs: 60_000 })));
}

async function runOne(workload: Workload, strategy: BenchStrategy, fleet: Fleet, scale: number): Promise<{ row: ResultRow; note: string }> {
  const engines = fleet.engines.get(workload)!;
  const services = fleet.services.get(strategy)!;
  await Promise.all(engines.map((e) => e.reset()));
  const outside = workload.outside;
  const client = outside ? startOutsideLoad(engines[outside.engine].url, workload.models[0], outside) : undefined;
  try {
    if (outside) await waitForOutsideLoad(() => engines[outside.engine].stats(), outside);
    const nodes = engines.map((e) => e.node);
    let note = '';
    if (strategy.env.LOAD_POLL_MS !== '0' && !(await waitForReadingsSince(services.baseUrl, nodes, Date.now())))
      note += `; no fresh engine readings within ${FRESH_READINGS_TIMEOUT_MS} ms`;
    // Only where models swap: sampling costs CPU the other workloads' timings would feel.
    const watch = workload.engines.some((e) => e.maxLoadedModels !== undefined)
      ? watchLoads(engines.map((e) => () => e.stats()))
      : undefined;
    const { samples, wallMs } = await replayTrace(services.baseUrl, workload.trace(scale), { timeoutMs: 60_000 });
    const counters = await Promise.all(engines.map((e) => e.stats()));
    const watched = await watch?.stop();
    const avoidable =
      watched === undefined
        ? null
        : countAvoidableLoads(
            watched,
            workload.engines.map((e) => e.slots),
          );
    if (outside)
      note += `; ${samples.filter((x) => x.node === engines[outside.engine].node).length} of ${samples.length} requests on the node under outside load`;
    return { row: { ...summarize(workload.name, strategy.name, samples, wallMs, counters), avoidableLoads: avoidable }, note };
  } catch (error) {
    return { row: emptyRow(workload.name, strategy.name, `failed: ${(error as Error).message.split('\n')[0].slice(0, 120)}`), note: '' };
  } finally {
    await client?.stop();
  }
}

/** Whether the gateway's /v1/nodes showed, for every node, an engine reading taken after `since` within the timeout. */
async function waitForReadingsSince(baseUrl: string, nodes: readonly string[], since: number): Promise<boolean> {
  const deadline = Date.now() + FRESH_READINGS_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const res = await fetch(`${baseUrl}/v1/nodes`);
    const answeredAt = Date.now();
    const body = (await res.json()) as { data?: { node: string; engine: { age_ms: number } | null }[] };
    const takenAt = new Map((body.data ?? []).map((n) => [n.node, n.engine === null ? null : answeredAt - n.engine.age_ms]));
    if (nodes.every((node) => (takenAt.get(node) ?? 0) > since)) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** Waits for every start; rejects with the first failure only once all have settled (nothing left starting unseen). */
async function settleAll(promises: Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

function warmUpTrace(models: readonly string[]): Session[] {
  return models.flatMap((model) =>
    Array.from({ length: WARM_UP_REQUESTS }, () => ({ startMs: 0, model, thinkMs: 0, turns: [{ user: 'warm up', maxTokens: 2 }] })),
  );
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
