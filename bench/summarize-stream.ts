/**
 * The streaming phase's medians across rounds, with ratios to the floor relay and delays
 * over direct's taken within each round before their median, and the targets.
 */
import { median } from './percentile.ts';
import type { EventStreamResult } from './measure-event-stream.ts';

export const STREAM_TARGET_NAMES = [
  'direct',
  'stream-floor',
  'gateway-memory',
  'gateway-redis',
  'baseline-memory',
  'baseline-redis',
  'nginx',
] as const;
export type StreamTargetName = (typeof STREAM_TARGET_NAMES)[number];

export type StreamRound = Partial<Record<StreamTargetName, EventStreamResult>>;

export interface StreamSummary {
  name: StreamTargetName;
  eventsPerSec: number;
  cpuUsPerEvent: number;
  /** redis-server's CPU per event (gateway-redis). */
  auxCpuUsPerEvent: number;
  syscallsPerEvent: number;
  /** (CPU + aux CPU) per event ÷ the floor relay's, same round. */
  cpuVsFloor: number;
  delayP50Ms: number;
  delayP99Ms: number;
  /** p99 delay minus direct's, same round: what the relay adds. */
  addedP99Ms: number;
  /** Added p99 minus the floor relay's added p99, same round. */
  addedP99VsFloorMs: number;
  /** Bytes allocated and promoted per event (`--gc`), KB; NaN without. */
  allocatedKbPerEvent: number;
  promotedKbPerEvent: number;
  /** The relay's event-loop delay (`--gc`): median over rounds of each window's p99 and max, ms. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  errors: number;
}

export function summarizeStreamRounds(rounds: readonly StreamRound[], names: readonly StreamTargetName[]): StreamSummary[] {
  const total = (r: EventStreamResult | undefined) =>
    r ? r.cpuUsPerEvent + (Number.isNaN(r.auxCpuUsPerEvent) ? 0 : r.auxCpuUsPerEvent) : NaN;
  return names.map((name) => {
    const of = (pick: (t: EventStreamResult, round: StreamRound) => number) =>
      median(rounds.map((round) => (round[name] ? pick(round[name]!, round) : NaN)));
    const added = (round: StreamRound, who: StreamTargetName) => (round[who]?.delayP99Ms ?? NaN) - (round.direct?.delayP99Ms ?? NaN);
    return {
      name,
      eventsPerSec: of((t) => t.eventsPerSec),
      cpuUsPerEvent: of((t) => t.cpuUsPerEvent),
      auxCpuUsPerEvent: of((t) => t.auxCpuUsPerEvent),
      syscallsPerEvent: of((t) => t.syscallsPerEvent),
      cpuVsFloor: of((t, r) => total(t) / total(r['stream-floor'])),
      delayP50Ms: of((t) => t.delayP50Ms),
      delayP99Ms: of((t) => t.delayP99Ms),
      addedP99Ms: of((_, r) => added(r, name)),
      addedP99VsFloorMs: of((_, r) => added(r, name) - added(r, 'stream-floor')),
      allocatedKbPerEvent: of((t) => t.allocatedKbPerEvent),
      promotedKbPerEvent: of((t) => t.promotedKbPerEvent),
      loopDelayP99Ms: of((t) => t.loopDelayP99Ms),
      loopDelayMaxMs: of((t) => t.loopDelayMaxMs),
      errors: rounds.reduce((sum, round) => sum + (round[name]?.errors ?? 0), 0),
    };
  });
}

export interface StreamCheck {
  target: StreamTargetName;
  what: string;
  limit: string;
  measured: number;
  pass: boolean;
}

/** The streaming targets for the gateway rows. */
export function checkStreamTargets(summaries: readonly StreamSummary[]): StreamCheck[] {
  const checks: StreamCheck[] = [];
  for (const s of summaries.filter((t) => t.name.startsWith('gateway') || t.name.startsWith('baseline'))) {
    const add = (what: string, limit: string, measured: number, pass: boolean) =>
      checks.push({ target: s.name, what, limit, measured, pass: !Number.isNaN(measured) && pass });
    add('CPU per relayed event vs floor relay', '≤ 1.15×', s.cpuVsFloor, s.cpuVsFloor <= 1.15);
    add('added p99 event delay vs floor relay (ms)', '≤ +1 ms', s.addedP99VsFloorMs, s.addedP99VsFloorMs <= 1);
  }
  return checks;
}

const COLUMNS = [
  ['target', 15],
  ['events/s', 8],
  ['CPU µs/event', 12],
  ['+redis µs', 9],
  ['÷floor', 6],
  ['syscalls', 8],
  ['p50 ms', 7],
  ['p99 ms', 7],
  ['+p99 ms', 7],
  ['−floor ms', 9],
  ['errors', 6],
] as const;

export function formatStreamReport(
  summaries: readonly StreamSummary[],
  checks: readonly StreamCheck[],
  setup: { streams: number; eventsPerSec: number; windowSec: number; rounds: number; surface?: 'chat' | 'messages' },
): string {
  const num = (v: number, digits: number) => (Number.isNaN(v) ? '—' : v.toFixed(digits));
  const row = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(COLUMNS[i][1]) : c.padStart(COLUMNS[i][1]))).join('  ');
  const lines = [
    `streaming${setup.surface === 'messages' ? ' (Anthropic Messages, from a vLLM that serves it)' : ''}: ${setup.streams} streams × ${setup.eventsPerSec} events/s, ${setup.windowSec} s measured per target and round, ${setup.rounds} round${setup.rounds === 1 ? '' : 's'} (medians); delay = upstream write → client read`,
    row(COLUMNS.map(([name]) => name)),
    ...summaries.map((s) =>
      row([
        s.name,
        num(s.eventsPerSec, 0),
        num(s.cpuUsPerEvent, 1),
        num(s.auxCpuUsPerEvent, 1),
        num(s.cpuVsFloor, 2),
        num(s.syscallsPerEvent, 2),
        num(s.delayP50Ms, 2),
        num(s.delayP99Ms, 2),
        num(s.addedP99Ms, 2),
        num(s.addedP99VsFloorMs, 2),
        String(s.errors),
      ]),
    ),
    ...summaries
      .filter((s) => !Number.isNaN(s.allocatedKbPerEvent))
      .map(
        (s) =>
          `  ${s.name}: allocates ${num(s.allocatedKbPerEvent, 2)} KB per event, promotes ${num(s.promotedKbPerEvent, 3)} KB; ` +
          `event-loop delay p99 ${num(s.loopDelayP99Ms, 2)} ms, max ${num(s.loopDelayMaxMs, 1)} ms (--gc)`,
      ),
    ...checks.map((c) => `  ${c.pass ? 'PASS' : 'FAIL'}  ${c.target}: ${c.what} ${c.limit} — measured ${num(c.measured, 2)}`),
  ];
  return lines.join('\n');
}
