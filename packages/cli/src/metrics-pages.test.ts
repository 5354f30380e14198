/**
 * The real /metrics pages of a gateway (in-process, after a few requests of each kind) and
 * of the monitor (after a scan), checked the way an operator's tools read them:
 * `promtool check metrics` (Debian's prometheus package), and every metric name the Grafana
 * dashboard's queries use must exist on one of the two pages.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig, MemoryStateStore } from '@ai-lb/shared';
import { startMonitor, type MonitorHandle } from '@ai-lb/monitor';
import { startFakeLlmServer, type FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, nodeState, startGateway } from '@ai-lb/gateway/testing/gateway-harness.ts';

const DASHBOARD = fileURLToPath(new URL('../../../deploy/grafana/ai-lb.json', import.meta.url));

let upstream: FakeLlmProcess;
let monitorPage: string;
let monitor: MonitorHandle;
let store: MemoryStateStore;

beforeAll(async () => {
  upstream = await startFakeLlmServer({ models: ['m1'] });
  store = new MemoryStateStore();
  monitor = await startMonitor({
    config: loadConfig({ SCAN_HOSTS: upstream.node, SCAN_PORTS: '1', MONITOR_PORT: '0', LOAD_BALANCER_HOST: '127.0.0.1' }),
    store,
    schedule: false,
  });
  await monitor.scanOnce();
  monitorPage = await (await fetch(`http://127.0.0.1:${monitor.port}/metrics`)).text();
});

afterAll(async () => {
  await monitor?.stop();
  await store?.close();
  await upstream?.stop();
});

/** A gateway with traffic of every kind the metrics label: JSON, stream, 404, 400, a failed node. */
async function gatewayMetricsPage(): Promise<string> {
  const h = await startGateway('memory', { MAX_RETRIES: '1' });
  await h.putNodes(nodeState(upstream.node, ['m1']), nodeState('127.0.0.1:1', ['m1']));
  for (let i = 0; i < 3; i++) await (await h.post('/v1/chat/completions', chatBody('m1'))).text();
  await (await h.post('/v1/chat/completions', chatBody('m1', { stream: true }))).text();
  await (await h.post('/v1/chat/completions', chatBody('no-such-model'))).text();
  await (await h.post('/v1/chat/completions', '{"model":')).text();
  await (await h.post('/v1/embeddings', { model: 'm1', input: 'hi' })).text();
  const page = await (await h.get('/metrics')).text();
  expect(page).toContain('ai_lb_requests_total{');
  // The LLM metrics have samples, labelled by the fleet's model and node.
  const labels = `model="m1",node="${upstream.node}"`;
  for (const series of [
    `ai_lb_time_to_first_token_seconds_count{${labels}}`,
    `ai_lb_time_per_output_token_seconds_count{${labels}}`,
    `ai_lb_tokens_total{${labels},type="completion"}`,
    `ai_lb_tokens_total{${labels},type="prompt"}`,
    `ai_lb_request_duration_seconds_count{route="chat",stream="false",${labels}}`,
    'ai_lb_gateway_overhead_seconds_count{route="chat"}',
  ]) {
    expect(page).toContain(series);
  }
  return page;
}

/** promtool's problem lines for a page (empty when it passes). */
function promtoolProblems(page: string): { status: number | null; problems: string[] } {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: page, encoding: 'utf8' });
  if (run.error) throw run.error;
  const problems = `${run.stdout}\n${run.stderr}`
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  return { status: run.status, problems };
}

/** Every metric family on a page (from its # TYPE lines) with the series names it yields. */
function seriesNames(page: string): Set<string> {
  const names = new Set<string>();
  for (const match of page.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = match;
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

/** Every ai_lb_* name in the dashboard's PromQL: panel targets and template variable queries. */
function dashboardMetricNames(): string[] {
  const names = new Set<string>();
  const visit = (value: unknown, key = ''): void => {
    if (typeof value === 'string') {
      if (['expr', 'query', 'definition'].includes(key)) for (const m of value.matchAll(/\bai_lb_[a-zA-Z0-9_]+/g)) names.add(m[0]);
    } else if (Array.isArray(value)) for (const item of value) visit(item, key);
    else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) visit(v, k);
  };
  visit(JSON.parse(readFileSync(DASHBOARD, 'utf8')));
  return [...names].sort();
}

const hasPromtool = process.env.CI === 'true' || spawnSync('promtool', ['--version']).status === 0;

describe.runIf(hasPromtool)('promtool check metrics', () => {
  test('the monitor page passes', () => {
    expect(promtoolProblems(monitorPage)).toEqual({ status: 0, problems: [] });
  });

  test('the gateway page passes', async () => {
    expect(promtoolProblems(await gatewayMetricsPage())).toEqual({ status: 0, problems: [] });
  });
});

describe('the Grafana dashboard', () => {
  test('every metric name its queries use is on the gateway or the monitor page', async () => {
    const used = dashboardMetricNames();
    expect(used.length).toBeGreaterThan(20);
    const exported = new Set([...seriesNames(await gatewayMetricsPage()), ...seriesNames(monitorPage)]);
    const missing = used.filter((name) => !exported.has(name));
    expect(missing, 'metric names the dashboard uses that no page exports').toEqual([]);
  });

  test('label selectors name labels the series have, where the page shows samples', async () => {
    const page = `${await gatewayMetricsPage()}\n${monitorPage}`;
    const labelsOf = new Map<string, Set<string>>();
    for (const m of page.matchAll(/^(ai_lb_[a-zA-Z0-9_]+)\{([^}]*)\}/gm)) {
      const set = labelsOf.get(m[1]) ?? new Set<string>();
      for (const pair of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) set.add(pair[1]);
      labelsOf.set(m[1], set);
    }
    const wrong = new Set<string>();
    const text = readFileSync(DASHBOARD, 'utf8');
    for (const m of text.matchAll(/(ai_lb_[a-zA-Z0-9_]+)\{([^}]*)\}/g)) {
      const known = labelsOf.get(m[1]);
      if (!known) continue; // no samples on the page yet: nothing to compare with
      for (const pair of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
        if (!known.has(pair[1]) && pair[1] !== 'job' && pair[1] !== 'instance') wrong.add(`${m[1]}{${pair[1]}}`);
      }
    }
    expect([...wrong].sort(), 'selectors on labels the series do not have').toEqual([]);
  });
});
