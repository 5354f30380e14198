import { describe, expect, test } from 'vitest';
import { median, percentile } from './percentile.ts';
import { type RoundResult, roundOrder, type TargetRound } from './run-rounds.ts';
import { checkIssueTargets, summarizeRounds } from './summarize-rounds.ts';

const round = (overrides: Partial<TargetRound> = {}): TargetRound => ({
  rps: 1000,
  p50Ms: 5,
  p99Ms: 10,
  cpuUsPerReq: 100,
  auxCpuUsPerReq: NaN,
  allocatedKbPerReq: NaN,
  promotedKbPerReq: NaN,
  ttfbP50Ms: 1,
  slowP50Ms: 51,
  slowP99Ms: 55,
  errors: 0,
  held: null,
  ...overrides,
});

/** Three rounds in which the gateway's ratios to the floor move: req/s 0.75–0.9×, CPU 1.1–1.3×. */
function spreadRounds(gateway: 'gateway-memory' | 'gateway-redis'): RoundResult[] {
  return [
    [2000, 100, 1500, 130],
    [1000, 200, 900, 220],
    [2000, 100, 1600, 125],
  ].map(([floorRps, floorCpu, rps, cpu]) => ({
    direct: round({ rps: 4000, cpuUsPerReq: NaN }),
    'node-floor': round({ rps: floorRps, cpuUsPerReq: floorCpu }),
    [gateway]: round({ rps, cpuUsPerReq: cpu }),
  }));
}

describe('median and percentile', () => {
  test('median of odd and even counts, NaN ignored', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([NaN, 5, NaN])).toBe(5);
    expect(median([])).toBeNaN();
  });
  test('nearest-rank percentile', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(samples, 50)).toBe(50);
    expect(percentile(samples, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
  });
});

describe('summarizeRounds', () => {
  test('ratios are taken within each round, then their median', () => {
    // Round 2 runs on a machine twice as slow: raw rps medians would mix the two, per-round ratios do not.
    const rounds: RoundResult[] = [
      {
        direct: round({ rps: 4000, cpuUsPerReq: NaN }),
        'node-floor': round({ rps: 2000, cpuUsPerReq: 200 }),
        'gateway-memory': round({ rps: 1800, cpuUsPerReq: 230 }),
      },
      {
        direct: round({ rps: 2000, cpuUsPerReq: NaN }),
        'node-floor': round({ rps: 1000, cpuUsPerReq: 400 }),
        'gateway-memory': round({ rps: 900, cpuUsPerReq: 460 }),
      },
      {
        direct: round({ rps: 4000, cpuUsPerReq: NaN }),
        'node-floor': round({ rps: 2000, cpuUsPerReq: 200 }),
        'gateway-memory': round({ rps: 1800, cpuUsPerReq: 230 }),
      },
    ];
    const [direct, floor, gateway] = summarizeRounds(rounds, ['direct', 'node-floor', 'gateway-memory']);
    expect(direct.rpsVsDirect).toBe(1);
    expect(floor.rpsVsDirect).toBe(0.5);
    expect(gateway.rps).toBe(1800);
    expect(gateway.rpsVsFloor).toBeCloseTo(0.9, 10);
    expect(gateway.cpuVsFloor).toBeCloseTo(1.15, 10);
    expect(direct.cpuVsFloor).toBeNaN();
  });

  test("each ratio's spread over the rounds is kept beside its median", () => {
    const [floor, gateway] = summarizeRounds(spreadRounds('gateway-redis'), ['node-floor', 'gateway-redis']);
    expect(gateway.rpsVsFloor).toBeCloseTo(0.8, 10);
    expect(gateway.rpsVsFloorRange[0]).toBeCloseTo(0.75, 10);
    expect(gateway.rpsVsFloorRange[1]).toBeCloseTo(0.9, 10);
    expect(gateway.cpuVsFloorRange[0]).toBeCloseTo(1.1, 10);
    expect(gateway.cpuVsFloorRange[1]).toBeCloseTo(1.3, 10);
    expect(floor.cpuVsFloorRange).toEqual([1, 1]);
    const unmeasured = summarizeRounds([{ 'gateway-redis': round() }], ['gateway-redis'])[0];
    expect(unmeasured.cpuVsFloorRange).toEqual([NaN, NaN]);
  });

  test('garbage per request (--gc): the median over rounds; NaN where it was not counted', () => {
    const rounds: RoundResult[] = [33.1, 34.0, 33.4].map((kb, i) => ({
      direct: round(),
      'gateway-memory': round({ allocatedKbPerReq: kb, promotedKbPerReq: [2.1, 1.9, 2.0][i] }),
    }));
    const [direct, gateway] = summarizeRounds(rounds, ['direct', 'gateway-memory']);
    expect(gateway.allocatedKbPerReq).toBe(33.4);
    expect(gateway.promotedKbPerReq).toBe(2.0);
    expect(direct.allocatedKbPerReq).toBeNaN();
  });

  test('added latency and TTFB are differences to direct in the same round', () => {
    const rounds: RoundResult[] = [
      {
        direct: round({ slowP50Ms: 50.2, slowP99Ms: 52, ttfbP50Ms: 0.4 }),
        'node-floor': round({ slowP50Ms: 50.6, slowP99Ms: 53.5, ttfbP50Ms: 0.9 }),
      },
    ];
    const floor = summarizeRounds(rounds, ['direct', 'node-floor'])[1];
    expect(floor.addedP50Ms).toBeCloseTo(0.4, 10);
    expect(floor.addedP99Ms).toBeCloseTo(1.5, 10);
    expect(floor.addedTtfbMs).toBeCloseTo(0.5, 10);
  });

  test('held streams: worst opened count and slowest release across rounds; errors add up', () => {
    const held = (opened: number, releasedMs: number) => ({ opened, rssIdleMb: 80, rssMb: 120, releasedMs });
    const rounds: RoundResult[] = [
      { direct: round(), hpm: round({ held: held(1000, 300), errors: 2 }) },
      { direct: round(), hpm: round({ held: held(990, 200), errors: 1 }) },
    ];
    const hpm = summarizeRounds(rounds, ['direct', 'hpm'])[1];
    expect(hpm.heldOpened).toBe(990);
    expect(hpm.releasedMs).toBe(300);
    expect(hpm.rssMb).toBe(120);
    expect(hpm.errors).toBe(3);
  });
});

describe('checkIssueTargets', () => {
  test('checks gateway rows only, and fails what is over a limit or unmeasured', () => {
    const rounds: RoundResult[] = [
      {
        direct: round(),
        'node-floor': round({ rps: 1000, cpuUsPerReq: 100, slowP50Ms: 51.2 }),
        'gateway-redis': round({
          rps: 850,
          cpuUsPerReq: 110,
          slowP50Ms: 51.5,
          slowP99Ms: 56,
          ttfbP50Ms: 1.5,
          held: { opened: 1000, rssIdleMb: 70, rssMb: 140, releasedMs: 100 },
        }),
      },
    ];
    const checks = checkIssueTargets(summarizeRounds(rounds, ['direct', 'node-floor', 'gateway-redis']), 1000);
    expect(checks.every((c) => c.target === 'gateway-redis')).toBe(true);
    const byWhat = Object.fromEntries(checks.map((c) => [c.what, c.pass]));
    expect(byWhat).toEqual({
      'throughput vs node floor': false, // 0.85×
      'CPU per request vs node floor': true, // 1.1×
      'added latency p50 (50 ms upstream)': true, // 0.5 ms
      'added latency p99 (50 ms upstream)': true, // 1 ms
      'added stream TTFB p50': true, // 0.5 ms
      'RSS with 1000 open streams (MB)': true,
    });
    const unmeasured = checkIssueTargets(summarizeRounds([{ 'gateway-memory': round() }], ['gateway-memory']), 0);
    expect(unmeasured.every((c) => !c.pass)).toBe(true);
  });
});

describe('the Redis-vs-memory gap line', () => {
  test('prints the per-request difference between the two gateway runs', async () => {
    const { formatStoreGap } = await import('./format-report.ts');
    const base = {
      rpsVsDirect: 1,
      rpsVsFloor: 1,
      p99Ms: 1,
      addedP50Ms: 0,
      addedP99Ms: 0,
      ttfbP50Ms: 0,
      addedTtfbMs: 0,
      cpuVsFloor: 1,
      rssMb: 0,
      rssDeltaMb: 0,
      errors: 0,
      heldOpened: NaN,
      rssIdleMb: NaN,
      releasedMs: NaN,
    };
    const memory = { ...base, name: 'gateway-memory', rps: 2000, p50Ms: 10, cpuUsPerReq: 400, auxCpuUsPerReq: NaN };
    const redis = { ...base, name: 'gateway-redis', rps: 1000, p50Ms: 12.5, cpuUsPerReq: 700, auxCpuUsPerReq: 80 };
    const lines = formatStoreGap([memory, redis] as never);
    expect(lines).toEqual([
      "  Redis state vs memory, per request: gateway CPU +300 µs, redis-server +80 µs, p50 +2.50 ms; throughput 0.50× of memory's",
    ]);
    expect(formatStoreGap([memory] as never)).toEqual([]);
  });
});

describe('the report', () => {
  test("prints each gateway's per-round spread of its floor ratios beside the medians", async () => {
    const { formatReport } = await import('./format-report.ts');
    const { parseBenchOptions } = await import('./bench-options.ts');
    const summaries = summarizeRounds(spreadRounds('gateway-memory'), ['direct', 'node-floor', 'gateway-memory']);
    const machine = {
      cpuModel: 'test',
      cores: 2,
      node: 'v20',
      date: 'today',
      command: 'pnpm bench',
      generator: 'wrk',
      loadAvgBefore: 0,
      loadAvgAfter: 0,
    };
    const report = formatReport(machine, parseBenchOptions([]), summaries, []);
    expect(report).toContain('gateway-memory: ÷floor per round: req/s 0.75–0.90×, CPU 1.10–1.30×');
    // One number per round for the floor itself, and none for direct: no line for either.
    expect(report).not.toContain('node-floor: ÷floor per round');
    expect(report).not.toContain('direct: ÷floor per round');
  });
});

describe('roundOrder', () => {
  test('odd rounds take the targets as given, even rounds in reverse: no target always follows the same one', () => {
    const targets = ['direct', 'node-floor', 'gateway-memory', 'gateway-redis'];
    expect(roundOrder(targets, 1)).toEqual(targets);
    expect(roundOrder(targets, 2)).toEqual(['gateway-redis', 'gateway-memory', 'node-floor', 'direct']);
    expect(roundOrder(targets, 3)).toEqual(targets);
    expect(targets).toEqual(['direct', 'node-floor', 'gateway-memory', 'gateway-redis']);
  });
});
