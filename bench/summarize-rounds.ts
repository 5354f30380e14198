/**
 * Medians across rounds, and ratios taken within each round (target and reference measured
 * minutes apart on the same noisy machine) before their median is taken.
 */
import { median } from './percentile.ts';
import type { RoundResult, TargetRound } from './run-rounds.ts';
import type { TargetName } from './start-target.ts';

export interface TargetSummary {
  name: TargetName;
  rps: number;
  rpsVsDirect: number;
  rpsVsFloor: number;
  p50Ms: number;
  p99Ms: number;
  /** With the slow (50 ms) upstream: this target's latency minus direct's, same round. */
  addedP50Ms: number;
  addedP99Ms: number;
  ttfbP50Ms: number;
  /** Stream time to first byte minus direct's, same round. */
  addedTtfbMs: number;
  cpuUsPerReq: number;
  cpuVsFloor: number;
  /**
   * The lowest and highest per-round ratio to the floor behind rpsVsFloor and cpuVsFloor:
   * how far one round moved on this machine, so a median near a target is read as such.
   */
  rpsVsFloorRange: [number, number];
  cpuVsFloorRange: [number, number];
  auxCpuUsPerReq: number;
  allocatedKbPerReq: number;
  promotedKbPerReq: number;
  rssMb: number;
  rssIdleMb: number;
  /** What the held streams added over the same process's RSS just before they opened. */
  rssDeltaMb: number;
  /** Fewest streams that were open at once in any round (should equal the requested count). */
  heldOpened: number;
  /** Slowest release of upstream requests after the clients left; NaN = some were never released. */
  releasedMs: number;
  errors: number;
}

export function summarizeRounds(rounds: readonly RoundResult[], names: readonly TargetName[]): TargetSummary[] {
  return names.map((name) => {
    const each = (pick: (t: TargetRound, round: RoundResult) => number) =>
      rounds.map((round) => (round[name] ? pick(round[name]!, round) : NaN));
    const of = (pick: (t: TargetRound, round: RoundResult) => number) => median(each(pick));
    const ref = (round: RoundResult, other: TargetName) => round[other] ?? ({} as Partial<TargetRound>);
    const rpsVsFloor = (t: TargetRound, r: RoundResult) => t.rps / (ref(r, 'node-floor').rps ?? NaN);
    const cpuVsFloor = (t: TargetRound, r: RoundResult) => t.cpuUsPerReq / (ref(r, 'node-floor').cpuUsPerReq ?? NaN);
    const held = rounds.map((r) => r[name]?.held).filter((h) => h != null);
    return {
      name,
      rps: of((t) => t.rps),
      rpsVsDirect: of((t, r) => t.rps / (ref(r, 'direct').rps ?? NaN)),
      rpsVsFloor: of(rpsVsFloor),
      p50Ms: of((t) => t.p50Ms),
      p99Ms: of((t) => t.p99Ms),
      addedP50Ms: of((t, r) => t.slowP50Ms - (ref(r, 'direct').slowP50Ms ?? NaN)),
      addedP99Ms: of((t, r) => t.slowP99Ms - (ref(r, 'direct').slowP99Ms ?? NaN)),
      ttfbP50Ms: of((t) => t.ttfbP50Ms),
      addedTtfbMs: of((t, r) => t.ttfbP50Ms - (ref(r, 'direct').ttfbP50Ms ?? NaN)),
      cpuUsPerReq: of((t) => t.cpuUsPerReq),
      cpuVsFloor: of(cpuVsFloor),
      rpsVsFloorRange: range(each(rpsVsFloor)),
      cpuVsFloorRange: range(each(cpuVsFloor)),
      auxCpuUsPerReq: of((t) => t.auxCpuUsPerReq),
      allocatedKbPerReq: of((t) => t.allocatedKbPerReq),
      promotedKbPerReq: of((t) => t.promotedKbPerReq),
      rssMb: median(held.map((h) => h.rssMb)),
      rssIdleMb: median(held.map((h) => h.rssIdleMb)),
      rssDeltaMb: median(held.map((h) => h.rssMb - h.rssIdleMb)),
      heldOpened: held.length ? Math.min(...held.map((h) => h.opened)) : NaN,
      releasedMs: held.length ? Math.max(...held.map((h) => h.releasedMs)) : NaN,
      errors: rounds.reduce((sum, round) => sum + (round[name]?.errors ?? 0), 0),
    };
  });
}

/** Lowest and highest of the numbers that are not NaN; [NaN, NaN] when there are none. */
function range(values: readonly number[]): [number, number] {
  const known = values.filter((v) => !Number.isNaN(v));
  return known.length === 0 ? [NaN, NaN] : [Math.min(...known), Math.max(...known)];
}

/** Issue 6's targets for the gateway, checked against the summary. */
export interface TargetCheck {
  target: TargetName;
  what: string;
  limit: string;
  measured: number;
  pass: boolean;
}

export function checkIssueTargets(summaries: readonly TargetSummary[], heldStreams: number): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const s of summaries.filter((t) => t.name.startsWith('gateway'))) {
    const add = (what: string, limit: string, measured: number, pass: boolean) =>
      checks.push({ target: s.name, what, limit, measured, pass: !Number.isNaN(measured) && pass });
    add('throughput vs node floor', '≥ 0.9×', s.rpsVsFloor, s.rpsVsFloor >= 0.9);
    add('CPU per request vs node floor', '≤ 1.2×', s.cpuVsFloor, s.cpuVsFloor <= 1.2);
    add('added latency p50 (50 ms upstream)', '≤ 0.7 ms', s.addedP50Ms, s.addedP50Ms <= 0.7);
    add('added latency p99 (50 ms upstream)', '≤ 2 ms', s.addedP99Ms, s.addedP99Ms <= 2);
    add('added stream TTFB p50', '≤ 1 ms', s.addedTtfbMs, s.addedTtfbMs <= 1);
    if (heldStreams > 0)
      add(`RSS with ${heldStreams} open streams (MB)`, '≤ 150 MB', s.rssMb, s.rssMb <= 150 && s.heldOpened >= heldStreams);
  }
  return checks;
}
