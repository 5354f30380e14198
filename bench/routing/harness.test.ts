/**
 * The routing bench's harness in a tiny configuration: one workload, two strategies, a
 * trace of a few requests. It must measure something and stop every process it started.
 */
import { expect, test } from 'vitest';
import { runRoutingBench } from './harness.ts';
import { BENCH_STRATEGIES } from './strategies.ts';
import { WORKLOADS } from './workloads.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('one workload × two strategies: rows measured, every started process stopped', async () => {
  const result = await runRoutingBench({
    workloads: WORKLOADS.filter((w) => w.name === 'heterogeneous'),
    strategies: BENCH_STRATEGIES.filter((s) => s.name === 'ROUND_ROBIN' || s.name === 'LEAST_LOADED'),
    scale: 0.1,
    budgetMs: 120_000,
  });
  expect(result.rows.map((r) => [r.strategy, r.status])).toEqual([
    ['ROUND_ROBIN', 'ok'],
    ['LEAST_LOADED', 'ok'],
  ]);
  for (const row of result.rows) {
    expect(row.requests).toBeGreaterThanOrEqual(4);
    expect(row.errors).toBe(0);
    expect(row.ttftMeanMs).toBeGreaterThan(0);
    expect(row.e2eP99Ms).toBeGreaterThanOrEqual(row.ttftMeanMs!);
  }
  // 3 engines and 2 gateway processes.
  expect(result.pids).toHaveLength(5);
  expect(result.pids.filter(alive)).toEqual([]);
}, 180_000);
