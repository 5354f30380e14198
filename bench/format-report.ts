/** The human report of `pnpm bench`: machine, method, one table, issue-6 checks, notes. */
import { cpus, loadavg } from 'node:os';
import type { BenchOptions } from './bench-options.ts';
import type { TargetCheck, TargetSummary } from './summarize-rounds.ts';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  node: string;
  date: string;
  command: string;
  generator: string;
  /** 1-minute load average before and after: a busy machine shows here. */
  loadAvgBefore: number;
  loadAvgAfter: number;
}

export function describeMachine(command: string, generator: string): MachineInfo {
  const cpuList = cpus();
  return {
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
    node: process.version,
    date: new Date().toISOString(),
    command,
    generator,
    loadAvgBefore: loadavg()[0],
    loadAvgAfter: NaN,
  };
}

const COLUMNS = [
  ['target', 15],
  ['req/s', 7],
  ['÷direct', 7],
  ['÷floor', 6],
  ['p50 ms', 7],
  ['p99 ms', 7],
  ['+p50 ms', 7],
  ['+p99 ms', 7],
  ['TTFB ms', 7],
  ['+TTFB', 6],
  ['CPU µs/req', 10],
  ['÷floor', 6],
  ['RSS MB', 6],
  ['Δ MB', 5],
] as const;

export function formatReport(
  machine: MachineInfo,
  options: BenchOptions,
  summaries: readonly TargetSummary[],
  checks: readonly TargetCheck[],
): string {
  const lines = [
    `ai-lb bench — ${machine.date}`,
    `machine: ${machine.cpuModel}, ${machine.cores} cores; node ${machine.node}; load avg ${machine.loadAvgBefore.toFixed(2)} → ${machine.loadAvgAfter.toFixed(2)}`,
    `command: ${machine.command}`,
    `method: ${options.rounds} interleaved round${options.rounds === 1 ? ' (no median: a smoke run)' : 's, medians'}; ${machine.generator} -c${options.connections} ${options.durationSec}s per run; ` +
      `${options.upstreams} fake upstreams; TTFB over ${options.ttfbStreams} streams (concurrency ${options.ttfbConcurrency}); ` +
      `+p50/+p99 = added latency vs direct with a ${options.slowUpstreamMs} ms upstream; RSS with ${options.heldStreams} open streams ` +
      `(Δ = over the same process just before they opened); forwarders run as ${options.runtime === 'js' ? 'plain-JS bundles (node, no tsx)' : '.ts under tsx'}, ` +
      `V8 semi-space ${options.semiSpaceMb > 0 ? `${options.semiSpaceMb} MB` : 'default'}` +
      `${options.heapGrowingPercent > 0 ? `, heap growing ${options.heapGrowingPercent} %` : ''}${options.memoryReducer ? ', memory reducer on' : ', no memory reducer'}${options.inlineBudget > 0 ? `, inlining budget ${options.inlineBudget}` : ''}${options.optimizeForSize ? ', --optimize-for-size' : ''}`,
    '',
    COLUMNS.map(([title, width], i) => (i === 0 ? title.padEnd(width) : title.padStart(width))).join('  '),
  ];
  for (const s of summaries) {
    const cells = [
      s.name,
      int(s.rps),
      ratio(s.rpsVsDirect),
      ratio(s.rpsVsFloor),
      ms(s.p50Ms),
      ms(s.p99Ms),
      ms(s.addedP50Ms),
      ms(s.addedP99Ms),
      ms(s.ttfbP50Ms),
      ms(s.addedTtfbMs),
      int(s.cpuUsPerReq),
      ratio(s.cpuVsFloor),
      int(s.rssMb),
      int(s.rssDeltaMb),
    ];
    lines.push(cells.map((cell, i) => (i === 0 ? cell.padEnd(COLUMNS[i][1]) : cell.padStart(COLUMNS[i][1]))).join('  '));
  }
  lines.push('', ...formatNotes(summaries, options), ...formatChecks(checks));
  return lines.join('\n');
}

function formatNotes(summaries: readonly TargetSummary[], options: BenchOptions): string[] {
  const notes: string[] = [];
  for (const s of summaries) {
    if (s.errors > 0) notes.push(`! ${s.name}: ${s.errors} failed requests/streams over all rounds — its numbers are suspect`);
    // The floor's own ratios are 1 in every round, and one round has no spread: no line for either.
    if (!Number.isNaN(s.cpuVsFloorRange[0]) && s.cpuVsFloorRange[0] !== s.cpuVsFloorRange[1]) {
      const [rpsLow, rpsHigh] = s.rpsVsFloorRange;
      const [cpuLow, cpuHigh] = s.cpuVsFloorRange;
      notes.push(
        `  ${s.name}: ÷floor per round: req/s ${rpsLow.toFixed(2)}–${rpsHigh.toFixed(2)}×, CPU ${cpuLow.toFixed(2)}–${cpuHigh.toFixed(2)}× (the medians above sit in these)`,
      );
    }
    if (!Number.isNaN(s.auxCpuUsPerReq)) notes.push(`  ${s.name}: redis-server adds ${int(s.auxCpuUsPerReq)} µs CPU per request`);
    if (!Number.isNaN(s.allocatedKbPerReq)) {
      notes.push(
        `  ${s.name}: allocates ${s.allocatedKbPerReq.toFixed(1)} KB per request, promotes ${s.promotedKbPerReq.toFixed(2)} KB (--gc; steady where CPU is not)`,
      );
    }
    if (!Number.isNaN(s.heldOpened) && s.heldOpened < options.heldStreams) {
      notes.push(`! ${s.name}: only ${s.heldOpened} of ${options.heldStreams} streams reached their first byte`);
    }
    if (!Number.isNaN(s.rssIdleMb)) {
      const release = Number.isNaN(s.releasedMs) ? 'NOT released within 10 s' : `released ${s.releasedMs} ms after the clients left`;
      notes.push(`  ${s.name}: RSS idle ${int(s.rssIdleMb)} MB; held upstream requests ${release}`);
    }
  }
  notes.push(...formatStoreGap(summaries));
  notes.push(...formatBaselineGap(summaries));
  if (options.warmupSec < 5) {
    // Measured: after 1 s the gateway still costs up to 3× the floor's CPU per request, after
    // 8 s ≈ 1.1–1.3×; it keeps getting cheaper for ≈ 20 s of load (docs/performance.md).
    notes.push(
      `! warm-up ${options.warmupSec} s: the gateway is not warm yet (JIT); its CPU and throughput ratios are not comparable to a full run's`,
    );
  }
  return notes.length ? ['notes:', ...notes, ''] : [];
}

/** With --baseline (or --baseline-env): this build against the baseline, per store, from the same rounds. */
export function formatBaselineGap(summaries: readonly TargetSummary[]): string[] {
  const lines: string[] = [];
  for (const store of ['memory', 'redis'] as const) {
    const now = summaries.find((s) => s.name === `gateway-${store}`);
    const before = summaries.find((s) => s.name === `baseline-${store}`);
    if (!now || !before) continue;
    lines.push(
      `  this build vs --baseline (${store}): throughput ${ratio(now.rps / before.rps)}, ` +
        `CPU ${int(now.cpuUsPerReq)} vs ${int(before.cpuUsPerReq)} µs/req, p50 ${ms(now.p50Ms)} vs ${ms(before.p50Ms)} ms`,
    );
  }
  return lines;
}

/** What keeping the state in Redis costs per request, beside the in-memory store. */
export function formatStoreGap(summaries: readonly TargetSummary[]): string[] {
  const memory = summaries.find((s) => s.name === 'gateway-memory');
  const redis = summaries.find((s) => s.name === 'gateway-redis');
  if (!memory || !redis) return [];
  const aux = Number.isNaN(redis.auxCpuUsPerReq) ? 0 : redis.auxCpuUsPerReq;
  return [
    `  Redis state vs memory, per request: gateway CPU +${int(redis.cpuUsPerReq - memory.cpuUsPerReq)} µs, ` +
      `redis-server +${int(aux)} µs, p50 +${ms(redis.p50Ms - memory.p50Ms)} ms; throughput ${ratio(redis.rps / memory.rps)} of memory's`,
  ];
}

function formatChecks(checks: readonly TargetCheck[]): string[] {
  if (checks.length === 0) return [];
  return [
    'issue 6 targets:',
    ...checks.map(
      (c) => `  ${c.pass ? 'PASS' : 'FAIL'}  ${c.target.padEnd(15)} ${c.what.padEnd(40)} ${c.limit.padEnd(9)} measured ${num(c.measured)}`,
    ),
  ];
}

const int = (v: number) => (Number.isNaN(v) ? '—' : Math.round(v).toString());
const ms = (v: number) => (Number.isNaN(v) ? '—' : v.toFixed(2));
const ratio = (v: number) => (Number.isNaN(v) ? '—' : `${v.toFixed(2)}×`);
const num = (v: number) => (Number.isNaN(v) ? '—' : v.toFixed(2));
