/**
 * `pnpm bench:routing [--quick] [--json] [--workload a,b] [--strategy X,Y] [--budget-secs N]`:
 * how well each routing strategy places requests on a simulated fleet of fake engines
 * (bench/routing/workloads.ts), through the real gateway and monitor. Prints mean and p99
 * TTFT and end-to-end time, throughput, model loads triggered and prefix-cache hit rate
 * per workload × strategy. Bounded by --budget-secs (default 270; --quick 120): runs that
 * would start later are reported as skipped. `--runtime tsx` runs the services through tsx
 * exactly as `pnpm start` does (default: the `pnpm build` bundle). Only 127.0.0.1;
 * everything started is stopped.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { runRoutingBench } from './harness.ts';
import { BENCH_STRATEGIES } from './strategies.ts';
import { formatTable } from './summarize.ts';
import { WORKLOADS } from './workloads.ts';

const USAGE =
  'usage: pnpm bench:routing [--quick] [--json] [--workload name,…] [--strategy name,…] [--budget-secs N] [--runtime bundle|tsx]';
const QUICK_SCALE = 0.35;

function fail(message: string): never {
  process.stderr.write(`bench:routing: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function pick<T extends { name: string }>(all: readonly T[], wanted: string | undefined, what: string): T[] {
  if (wanted === undefined) return [...all];
  const names = wanted.split(',').map((n) => n.trim());
  for (const name of names)
    if (!all.some((item) => item.name === name)) fail(`unknown ${what} ${name} (one of ${all.map((i) => i.name).join(', ')})`);
  return all.filter((item) => names.includes(item.name));
}

async function main(): Promise<void> {
  let values: {
    quick?: boolean;
    json?: boolean;
    workload?: string;
    strategy?: string;
    'budget-secs'?: string;
    runtime?: string;
    help?: boolean;
  };
  try {
    values = parseArgs({
      options: {
        quick: { type: 'boolean' },
        json: { type: 'boolean' },
        workload: { type: 'string' },
        strategy: { type: 'string' },
        'budget-secs': { type: 'string' },
        runtime: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (error) {
    fail((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const budgetSecs = Number(values['budget-secs'] ?? (values.quick ? 120 : 270));
  if (!Number.isFinite(budgetSecs) || budgetSecs <= 0) fail(`--budget-secs must be a positive number of seconds`);
  const runtime = values.runtime ?? 'bundle';
  if (runtime !== 'bundle' && runtime !== 'tsx') fail('--runtime must be bundle or tsx');
  // Ctrl-C: exit through process.exit so the testkit's exit hook kills every child.
  process.once('SIGINT', () => process.exit(130));
  const result = await runRoutingBench({
    workloads: pick(WORKLOADS, values.workload, 'workload'),
    strategies: pick(BENCH_STRATEGIES, values.strategy, 'strategy'),
    scale: values.quick ? QUICK_SCALE : 1,
    budgetMs: budgetSecs * 1000,
    runtime,
    log: (line) => process.stderr.write(`bench:routing: ${line}\n`),
  });
  const machine = {
    loadavg1m: Math.round(loadavg()[0] * 10) / 10,
    node: process.version,
    durationSecs: Math.round(result.durationMs / 1000),
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ machine, quick: values.quick === true, rows: result.rows }, null, 2)}\n`);
  } else {
    process.stdout.write(formatTable(result.rows));
    process.stdout.write(
      `\n${result.durationMs > 0 ? `${machine.durationSecs} s` : ''}, load average ${machine.loadavg1m}, node ${machine.node}\n`,
    );
  }
}

await main();
