/**
 * One result row per workload × strategy, from the client's samples and the engines'
 * own counters, and the report: a plain-text table, or JSON.
 */
import { percentile } from '../percentile.ts';
import type { RequestSample } from './replay.ts';

export interface EngineCounters {
  promptTokens: number;
  cachedTokens: number;
  modelLoads: number;
  external: { promptTokens: number; cachedTokens: number };
}

export type RowStatus = 'ok' | 'skipped: time budget' | `failed: ${string}`;

export interface ResultRow {
  workload: string;
  strategy: string;
  status: RowStatus;
  requests: number;
  errors: number;
  ttftMeanMs: number | null;
  ttftP99Ms: number | null;
  e2eMeanMs: number | null;
  e2eP99Ms: number | null;
  /** Completed requests per second of replay. */
  throughputRps: number | null;
  /** Model loads the gateway's requests caused on the engines. */
  modelLoads: number | null;
  /** Of those, started while another engine had the model loaded and a free slot (load-watch.ts); null where models never swap. */
  avoidableLoads: number | null;
  /** Prompt tokens of the gateway's requests served from an engine's prefix cache. */
  prefixHitRate: number | null;
}

export function emptyRow(workload: string, strategy: string, status: RowStatus): ResultRow {
  return {
    workload,
    strategy,
    status,
    requests: 0,
    errors: 0,
    ttftMeanMs: null,
    ttftP99Ms: null,
    e2eMeanMs: null,
    e2eP99Ms: null,
    throughputRps: null,
    modelLoads: null,
    avoidableLoads: null,
    prefixHitRate: null,
  };
}

export function summarize(
  workload: string,
  strategy: string,
  samples: readonly RequestSample[],
  wallMs: number,
  engines: readonly EngineCounters[],
): ResultRow {
  const ok = samples.filter((s) => s.ok);
  const ttft = ok.map((s) => s.ttftMs);
  const e2e = ok.map((s) => s.e2eMs);
  const prompt = sum(engines.map((e) => e.promptTokens - e.external.promptTokens));
  const cached = sum(engines.map((e) => e.cachedTokens - e.external.cachedTokens));
  return {
    workload,
    strategy,
    status: 'ok',
    requests: samples.length,
    errors: samples.length - ok.length,
    ttftMeanMs: round(mean(ttft)),
    ttftP99Ms: round(percentile(ttft, 99)),
    e2eMeanMs: round(mean(e2e)),
    e2eP99Ms: round(percentile(e2e, 99)),
    throughputRps: wallMs > 0 ? round((ok.length / wallMs) * 1000, 2) : null,
    modelLoads: sum(engines.map((e) => e.modelLoads)),
    avoidableLoads: null,
    prefixHitRate: prompt > 0 ? round(cached / prompt, 3) : null,
  };
}

const COLUMNS: [string, (row: ResultRow) => string][] = [
  ['workload', (r) => r.workload],
  ['strategy', (r) => r.strategy],
  ['TTFT mean', (r) => ms(r.ttftMeanMs)],
  ['TTFT p99', (r) => ms(r.ttftP99Ms)],
  ['e2e mean', (r) => ms(r.e2eMeanMs)],
  ['e2e p99', (r) => ms(r.e2eP99Ms)],
  ['req/s', (r) => (r.throughputRps === null ? '-' : r.throughputRps.toFixed(2))],
  ['loads', (r) => (r.modelLoads === null ? '-' : String(r.modelLoads))],
  ['avoidable', (r) => (r.avoidableLoads === null ? '-' : String(r.avoidableLoads))],
  ['cache hits', (r) => (r.prefixHitRate === null ? '-' : `${Math.round(r.prefixHitRate * 100)} %`)],
  ['errors', (r) => (r.status === 'ok' ? `${r.errors}/${r.requests}` : '-')],
  ['', (r) => (r.status === 'ok' ? '' : r.status)],
];

export function formatTable(rows: readonly ResultRow[]): string {
  const cells = [COLUMNS.map(([title]) => title), ...rows.map((row) => COLUMNS.map(([, cell]) => cell(row)))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((line) => line[i].length)));
  return `${cells
    .map((line) =>
      line
        .map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

function ms(value: number | null): string {
  return value === null ? '-' : `${Math.round(value)} ms`;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : sum(values) / values.length;
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function round(value: number, digits = 1): number | null {
  if (!Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
