/**
 * deploy/grafana/ai-lb.json without a Grafana: every query parses as PromQL (promtool
 * checks them as recording rules, Grafana's variables replaced by values), every panel
 * reads the dashboard's data-source variable, and the layout has no overlapping panels.
 * That the metric names exist on real /metrics pages is checked in the gateway's
 * metrics-pages.test.ts, which can start both services.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { stringify } from 'yaml';

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
}

const file = fileURLToPath(new URL('../../../deploy/grafana/ai-lb.json', import.meta.url));
const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { panels: Panel[]; templating: { list: Array<{ name: string }> } };
const panels = dashboard.panels.filter((p) => p.type !== 'row');
/** Grafana's reference to the dashboard's data-source variable (a Grafana string, not a JS template). */
const DATASOURCE_VARIABLE = ['$', '{datasource}'].join('');

/** A query as Prometheus would receive it from Grafana, variables filled in. */
function asPromql(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__range', '1h')
    .replaceAll('"$model"', '".*"')
    .replaceAll('"$node"', '".*"');
}

describe('the Grafana dashboard', () => {
  test('covers the fleet, models, latency/TTFT, tokens, errors, failovers, queue and scan', () => {
    const rows = dashboard.panels.filter((p) => p.type === 'row').map((p) => p.title);
    expect(rows).toEqual(
      expect.arrayContaining([
        'Fleet',
        'Models and traffic',
        'Latency and time to first token',
        'Tokens',
        'Errors and failovers',
        'Queue',
        'Discovery scan',
      ]),
    );
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'model', 'node']);
  });

  test('every panel has queries on the data-source variable, unique ids, and a place of its own on the 24-column grid', () => {
    const ids = new Set<number>();
    const cells = new Map<string, string>();
    for (const panel of dashboard.panels) {
      expect(ids.has(panel.id), `duplicate id ${panel.id}`).toBe(false);
      ids.add(panel.id);
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++) {
        for (let col = x; col < x + w; col++) {
          const taken = cells.get(`${row}:${col}`);
          expect(taken, `${panel.title} overlaps ${taken}`).toBeUndefined();
          cells.set(`${row}:${col}`, panel.title);
        }
      }
    }
    for (const panel of panels) {
      expect(panel.datasource?.uid, panel.title).toBe(DATASOURCE_VARIABLE);
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.datasource?.uid).toBe(DATASOURCE_VARIABLE);
    }
  });

  const hasPromtool = process.env.CI === 'true' || commandExists('promtool');
  test.runIf(hasPromtool)('every query is valid PromQL (promtool check rules)', () => {
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => asPromql(t.expr)));
    expect(exprs.length).toBeGreaterThan(30);
    const rules = { groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `ai_lb:dashboard_query_${i}`, expr })) }] };
    const dir = mkdtempSync(join(tmpdir(), 'ai-lb-grafana-'));
    try {
      writeFileSync(join(dir, 'rules.yml'), stringify(rules));
      const out = execFileSync('promtool', ['check', 'rules', join(dir, 'rules.yml')], { encoding: 'utf8', stdio: 'pipe' });
      expect(out).toContain(`SUCCESS: ${exprs.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function commandExists(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
