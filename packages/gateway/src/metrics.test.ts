import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { accessLogger, createLogger } from '@ai-lb/shared';
import { performance } from 'node:perf_hooks';
import type { Exchange } from './http/exchange.ts';
import { accessLineEncoder, FastCounter, FastGauge, FastHistogram, GatewayMetrics } from './metrics.ts';
import type { RequestSummary } from './observability/request-summary.ts';
import type { EngineLoadView } from './observability/fleet-gauges.ts';

/** The same operations on prom-client's own metric and on ours must render the same text. */
describe('fast metrics render exactly as prom-client does', () => {
  const buckets = [0.005, 0.01, 0.1, 1, 10];
  const config = { help: 'help with "quotes" and \\ backslash' };

  it('counter with labels, including values that need escaping', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const a = new Counter({ ...config, name: 'c_total', labelNames: ['route', 'model'], registers: [theirs] });
    const b = new FastCounter(ours, { ...config, name: 'c_total', labelNames: ['route', 'model'] });
    for (const [labels, n] of [
      [{ route: 'chat', model: 'm"1\n' }, 1],
      [{ route: 'emb', model: 'x' }, 3],
      [{ route: 'chat', model: 'm"1\n' }, 2],
    ] as const) {
      a.inc(labels, n);
      b.inc(labels, n);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('c_total{route="chat",model="m\\"1\\n"} 3');
  });

  it('gauge held per label set', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const a = new Gauge({ ...config, name: 'g', labelNames: ['node'], registers: [theirs] });
    const b = new FastGauge(ours, { ...config, name: 'g', labelNames: ['node'] });
    const child = b.labels({ node: 'h:1' });
    a.inc({ node: 'h:1' });
    a.inc({ node: 'h:1' });
    a.dec({ node: 'h:1' });
    child.value++;
    child.value++;
    child.value--;
    a.inc({ node: 'h:2' });
    b.labels({ node: 'h:2' }).value++;
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('histogram: bucket edges, above the last bound, several label sets; non-finite values ignored', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const a = new Histogram({ ...config, name: 'h_seconds', labelNames: ['route', 'stream'], buckets, registers: [theirs] });
    const b = new FastHistogram(ours, { ...config, name: 'h_seconds', labelNames: ['route', 'stream'], buckets });
    const values = [0, 0.005, 0.0051, 0.01, 0.5, 1, 10, 10.01, 300];
    values.forEach((v, i) => {
      const labels = { route: i % 2 ? 'chat' : 'emb', stream: 'false' };
      a.observe(labels, v);
      b.observe(labels, v);
    });
    b.observe({ route: 'chat', stream: 'false' }, Number.NaN);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('h_seconds_bucket{le="0.005",route="emb",stream="false"}');
  });

  it('reset empties them, as resetMetrics() does for prom-client metrics', async () => {
    const ours = new Registry();
    const b = new FastCounter(ours, { ...config, name: 'c_total', labelNames: ['route'] });
    b.inc({ route: 'x' });
    ours.resetMetrics();
    expect(await ours.metrics()).not.toContain('route="x"');
  });
});

/** An ended request as recordRequest reads it (the fields an Exchange carries to its end). */
function endedRequest(over: Partial<Record<string, unknown>> = {}): Exchange {
  const startedAt = performance.now() - 120;
  return {
    req: { method: 'POST', headers: {}, socket: { remoteAddress: '127.0.0.1' } },
    res: { writableFinished: true, headersSent: true, statusCode: 200 },
    path: '/v1/chat/completions',
    surface: 'chat',
    requestId: 'r1',
    requestedModel: 'auto',
    model: 'm1',
    node: 'h:1',
    attempts: 1,
    eventStream: true,
    streamBroken: false,
    startedAt,
    firstTokenAt: startedAt + 20,
    contentEvents: 11,
    usage: null,
    upstreamStartAt: startedAt + 1,
    upstreamEndAt: startedAt + 119,
    queueWaitMs: null,
    finishReason: null,
    trace: null,
    ...over,
  } as unknown as Exchange;
}

describe('GatewayMetrics', () => {
  const fleet = {
    models: new Set(['m1']),
    nodes: new Map([['h:1', { running: 3, waiting: 1, kvCacheUsage: 0.42 }]]) as Map<string, EngineLoadView | undefined>,
    *nodeStates() {
      yield { node: 'h:1', healthy: true, circuit: 'closed' as const };
      yield { node: 'h:2', healthy: false, circuit: 'open' as const };
    },
    engineLoadOf(node: string) {
      return this.nodes.get(node);
    },
    node(id: string) {
      return id === 'h:1' || id === 'h:2' ? {} : undefined;
    },
    knownModel(name: string) {
      return this.models.has(name) ? name : undefined;
    },
    monitorStatus: () => ({ monitor: { monitorId: 'm' }, staleNodes: 1 }),
  };
  const watched = () => {
    const metrics = new GatewayMetrics();
    metrics.watch({ fleet, store: { health: () => ({ degraded: false, reason: null, remoteFailures: 0 }) }, queue: { size: 0 } });
    return metrics;
  };

  it("feeds the dashboard's drain shortly after a request ends, in one batch, and sets no timer while idle", async () => {
    const metrics = watched();
    const drained: number[] = [];
    const stop = metrics.keepFinished(() => drained.push(metrics.takeFinished().length), 20);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(drained).toEqual([]);
    metrics.recordRequest(endedRequest());
    metrics.recordRequest(endedRequest());
    expect(drained).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(drained).toEqual([2]);
    stop();
    metrics.recordRequest(endedRequest());
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(drained).toEqual([2]);
  });

  it('labels only models and nodes the fleet knows: anything else is "other", nothing is "none"', async () => {
    const metrics = watched();
    metrics.recordRequest(endedRequest());
    metrics.recordRequest(endedRequest({ model: 'made-up-by-a-client', node: '10.9.9.9:1' }));
    metrics.recordRequest(endedRequest({ model: null, node: null, eventStream: false, attempts: 0, upstreamStartAt: null }));
    const page = await metrics.registry.metrics();
    expect(page).toContain('ai_lb_requests_total{route="chat",model="m1",node="h:1",status="200"} 1');
    expect(page).toContain('ai_lb_requests_total{route="chat",model="other",node="other",status="200"} 1');
    expect(page).toContain('ai_lb_requests_total{route="chat",model="none",node="none",status="200"} 1');
    expect(page).not.toContain('made-up-by-a-client');
    expect(page).not.toContain('r1');
  });

  it('a stream without usage: TTFT, completion tokens estimated from its events, time per output token, overhead', async () => {
    const metrics = watched();
    metrics.recordRequest(endedRequest());
    const page = await metrics.registry.metrics();
    expect(page).toContain('ai_lb_time_to_first_token_seconds_count{model="m1",node="h:1"} 1');
    expect(page).toContain('ai_lb_tokens_total{model="m1",node="h:1",type="completion"} 11');
    expect(page).not.toContain('type="prompt"');
    // (119 - 20) ms over 10 tokens after the first: 9.9 ms each.
    expect(page).toMatch(/ai_lb_time_per_output_token_seconds_sum\{model="m1",node="h:1"\} 0\.0099/);
    expect(page).toContain('ai_lb_gateway_overhead_seconds_count{route="chat"} 1');
  });

  it('usage wins over the estimate; a failover answer is not gateway overhead', async () => {
    const metrics = watched();
    metrics.recordRequest(endedRequest({ usage: { promptTokens: 7, completionTokens: 5 }, attempts: 2 }));
    const page = await metrics.registry.metrics();
    expect(page).toContain('ai_lb_tokens_total{model="m1",node="h:1",type="prompt"} 7');
    expect(page).toContain('ai_lb_tokens_total{model="m1",node="h:1",type="completion"} 5');
    expect(page).not.toContain('ai_lb_gateway_overhead_seconds_count{route="chat"}');
  });

  it('engine gauges read the fleet cache at scrape time; a node without a reading has no series', async () => {
    const metrics = watched();
    let page = await metrics.registry.metrics();
    expect(page).toContain('ai_lb_engine_requests_running{node="h:1"} 3');
    expect(page).toContain('ai_lb_engine_requests_waiting{node="h:1"} 1');
    expect(page).toContain('ai_lb_engine_kv_cache_usage_ratio{node="h:1"} 0.42');
    expect(page).not.toContain('ai_lb_engine_requests_running{node="h:2"}');
    expect(page).toContain('ai_lb_circuit_state{node="h:2"} 2');
    fleet.nodes.set('h:1', { running: 0, waiting: null, kvCacheUsage: null });
    page = await metrics.registry.metrics();
    expect(page).toContain('ai_lb_engine_requests_running{node="h:1"} 0');
    expect(page).not.toContain('ai_lb_engine_requests_waiting{node="h:1"}');
  });

  it('names no gauge *_total (Prometheus keeps that suffix for counters)', async () => {
    const page = await new GatewayMetrics().registry.metrics();
    const misnamed = [...page.matchAll(/^# TYPE (\S+_total) (\S+)$/gm)].filter((m) => m[2] !== 'counter').map((m) => m[1]);
    expect(misnamed).toEqual([]);
    expect(page).toContain('ai_lb_nodejs_active_handles ');
  });
});

/** A request summary with every field set: the access-line tests vary it. */
const SUMMARY: RequestSummary = {
  requestId: 'r1',
  method: 'POST',
  path: '/v1/chat/completions',
  surface: 'chat',
  client: '127.0.0.1',
  forwardedFor: '10.0.0.1, 10.0.0.2',
  modelRequested: 'auto',
  model: 'm',
  node: 'a:1',
  status: 200,
  outcome: 'ok',
  stream: true,
  attempts: 2,
  failovers: 1,
  queueWaitMs: 0.5,
  ttftMs: 12.34,
  durationMs: 1.25,
  promptTokens: 3,
  completionTokens: 5,
  tokensEstimated: true,
};

/** The line pino's `info(summary, 'request')` writes under a child with these bindings. */
function pinoLine(summary: RequestSummary, timeMs: number, bindings = ',"service":"gateway"'): string {
  return `{"level":"info","time":${timeMs}${bindings},${JSON.stringify(summary).slice(1, -1)},"msg":"request"}\n`;
}

/** The line accessLineEncoder writes, from `at` in a buffer of exactly `at` + its maxBytes (filled with 0xff beforehand). */
function encodeLine(
  summary: RequestSummary,
  timeMs: number,
  bindings = ',"service":"gateway"',
  at = 0,
): { line: string; room: number; used: number } {
  const encoder = accessLineEncoder(bindings);
  const room = encoder.maxBytes(summary);
  const buf = Buffer.alloc(at + room, 0xff);
  const end = encoder.encode(buf, at, summary, timeMs);
  return { line: buf.toString('utf8', at, end), room, used: end - at };
}

describe('accessLineEncoder', () => {
  const strings = [
    '',
    'plain',
    'q"uote',
    'back\\slash',
    'tab\tnew\nline\u0000\u001f',
    '\u007f\u0080é€',
    '😀 pair',
    'lone \ud800 high',
    'lone \udfff low',
    '\u2028\u2029',
    '</script>',
  ];
  const numbers = [
    0,
    -0,
    7,
    -3,
    0.1,
    1e21,
    1e-7,
    2 ** 50 - 1,
    2 ** 50,
    2 ** 53 + 2,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
  ];
  const STRING_KEYS = ['requestId', 'method', 'path', 'surface', 'client', 'forwardedFor', 'modelRequested', 'model', 'node'] as const;
  const NUMBER_KEYS = [
    'status',
    'attempts',
    'failovers',
    'queueWaitMs',
    'ttftMs',
    'durationMs',
    'promptTokens',
    'completionTokens',
  ] as const;

  it('writes what JSON.stringify writes, whatever the strings and numbers hold, within its room', () => {
    const cases: RequestSummary[] = [SUMMARY];
    for (const value of strings) for (const key of STRING_KEYS) cases.push({ ...SUMMARY, [key]: value });
    for (const value of numbers) for (const key of NUMBER_KEYS) cases.push({ ...SUMMARY, [key]: value });
    cases.push({
      ...SUMMARY,
      forwardedFor: null,
      modelRequested: null,
      model: null,
      node: null,
      client: null,
      queueWaitMs: null,
      ttftMs: null,
      promptTokens: null,
      completionTokens: null,
      stream: false,
      tokensEstimated: false,
      outcome: 'stream_error',
    });
    for (const [i, summary] of cases.entries()) {
      const { line, room, used } = encodeLine(summary, 1_764_000_000_000 + i, ',"service":"gateway"', i % 5);
      expect(line).toBe(pinoLine(summary, 1_764_000_000_000 + i));
      expect(used).toBeLessThanOrEqual(room);
    }
  });

  it('fits the longest line its strings and numbers can make in the room it asks for', () => {
    const worst = { ...SUMMARY, outcome: 'stream_error' as const, stream: false, tokensEstimated: false };
    for (const key of STRING_KEYS) worst[key] = '\u0001\ud800'.repeat(100);
    for (const key of NUMBER_KEYS) worst[key] = -1.2345678901234567e-100;
    const bindings = ',"service":"gätewäy\u0001"';
    const { line, room, used } = encodeLine(worst, 1_764_000_000_000, bindings);
    expect(line).toBe(pinoLine(worst, 1_764_000_000_000, bindings));
    expect(used).toBeLessThanOrEqual(room);
    // Every string at six bytes per unit: the bound is not loose by more than the fixed part's slack.
    expect(room - used).toBeLessThan(200);
  });

  it("is the line the logger's info writes, byte for byte apart from the time, which is when it was queued", () => {
    const summary: RequestSummary = {
      ...SUMMARY,
      requestId: 'r"1\u2028é',
      forwardedFor: null,
      stream: false,
      attempts: 1,
      failovers: 0,
      queueWaitMs: null,
      ttftMs: Number.NaN,
      tokensEstimated: false,
    };
    const raw: string[] = [];
    const parent = createLogger({ destination: { write: (line: string) => raw.push(line) } }).child({ service: 'gateway' });
    parent.info(summary, 'request');
    const access = accessLogger(parent);
    expect(access).not.toBeNull();
    const before = Date.now();
    access!.writeLater(accessLineEncoder(access!.bindings), summary);
    const after = Date.now();
    const { time } = JSON.parse(raw[1]) as { time: number };
    expect(time).toBeGreaterThanOrEqual(before);
    expect(time).toBeLessThanOrEqual(after);
    const [viaPino, viaAccess] = raw.map((line) => line.replace(/"time":\d+/, '"time":0'));
    expect(viaAccess).toBe(viaPino);
  });
});
