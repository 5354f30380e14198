import { describe, expect, it } from 'vitest';
import type { NodeState } from '../types.ts';
import { buildDashboardState, type DashboardScanInput } from './build-dashboard-state.ts';
import { DASHBOARD_STATE_VERSION, SCAN_SKIPPED_LISTED } from './dashboard-state.ts';
import { TrafficRecorder } from './traffic-recorder.ts';

const NOW = 1_700_000_005_000;

function node(id: string, models: string[], over: Partial<NodeState> = {}): NodeState {
  const [host, port] = id.split(':');
  return {
    node: id,
    host,
    port: Number(port),
    kind: 'vllm',
    healthy: true,
    models,
    loadedModels: [],
    maxconn: 4,
    capacitySource: 'detected',
    detectedMaxconn: 4,
    latencyMs: 3,
    lastSeenMs: NOW - 1000,
    checkedAtMs: NOW - 1000,
    error: null,
    serverLoad: null,
    ...over,
  };
}

describe('buildDashboardState', () => {
  it('a NodeState fleet with circuits, in-flight and queues: every field of every node row', () => {
    const state = buildDashboardState({
      service: 'gateway',
      nowMs: NOW,
      nodes: [
        node('b:2', ['m2'], {
          healthy: false,
          error: 'timeout: no answer',
          kind: 'ollama',
          loadedModels: ['m2'],
          maxconn: 0,
          capacitySource: 'default',
        }),
        node('a:1', ['m1', 'm2'], { serverLoad: { running: 3, waiting: 1 } }),
      ],
      circuits: { 'b:2': { state: 'open', failures: 3, openUntilMs: NOW + 30_000 } },
      inflight: { 'a:1': 2 },
      queues: { m2: 5 },
    });
    expect(state.version).toBe(DASHBOARD_STATE_VERSION);
    expect(state.traffic).toBeNull();
    expect(state.scan).toBeNull();
    expect(state.fleet.map((n) => n.node)).toEqual(['a:1', 'b:2']);
    const [a, b] = state.fleet;
    expect(a).toMatchObject({
      kind: 'vllm',
      healthy: true,
      circuit: 'closed',
      circuitOpenUntilMs: null,
      models: [
        { id: 'm1', loaded: false },
        { id: 'm2', loaded: false },
      ],
      slots: { used: 2, cap: 4, capSource: 'detected' },
      queued: 5,
      engineLoad: { running: 3, waiting: 1, kvCacheUsage: null, atMs: null },
      surfaces: null,
      lastMinute: null,
      lastError: null,
    });
    expect(b).toMatchObject({
      healthy: false,
      circuit: 'open',
      circuitFailures: 3,
      circuitOpenUntilMs: NOW + 30_000,
      models: [{ id: 'm2', loaded: true }],
      slots: { used: 0, cap: null, capSource: 'default' },
      engineLoad: null,
      lastError: { message: 'timeout: no answer', atMs: NOW - 1000, source: 'probe' },
    });
    expect(state.summary).toEqual({ nodes: 2, healthyNodes: 1, openCircuits: 1, models: 2, inflight: 2, queued: 5 });
    expect(state.models).toEqual([
      { id: 'm1', nodes: [{ node: 'a:1', healthy: true, loaded: false }], eligibleNodes: 1, queued: 0, lastMinute: null },
      {
        id: 'm2',
        nodes: [
          { node: 'a:1', healthy: true, loaded: false },
          { node: 'b:2', healthy: false, loaded: true },
        ],
        eligibleNodes: 1,
        queued: 5,
        lastMinute: null,
      },
    ]);
  });

  it('tolerates records without loaded models, engine load or surfaces, and takes them when present', () => {
    const bare = {
      node: 'c:3',
      kind: 'openai' as const,
      healthy: true,
      models: ['m'],
      maxconn: 0,
      latencyMs: null,
      lastSeenMs: 1,
      checkedAtMs: 1,
      error: null,
    };
    const rich = { ...bare, node: 'd:4', surfaces: ['chat', 'embeddings'], engineLoad: { running: 1, kvCacheUsage: 0.5, atMs: 7 } };
    const state = buildDashboardState({ service: 'monitor', nowMs: NOW, nodes: [bare, rich], engineLoad: { 'c:3': { waiting: 9 } } });
    expect(state.fleet[0]).toMatchObject({
      models: [{ id: 'm', loaded: null }],
      engineLoad: { running: null, waiting: 9, kvCacheUsage: null, atMs: null },
      surfaces: null,
      queued: null,
      slots: { used: 0, cap: null, capSource: null },
    });
    expect(state.fleet[1]).toMatchObject({
      surfaces: ['chat', 'embeddings'],
      engineLoad: { running: 1, waiting: null, kvCacheUsage: 0.5, atMs: 7 },
    });
    expect(state.summary.queued).toBeNull();
    expect(state.models[0].queued).toBeNull();
  });

  it('with a traffic recorder: last-minute rates per node and model, the 15-minute series, the newer error wins', () => {
    const time = { now: NOW - 4000 };
    const traffic = new TrafficRecorder({ clock: () => time.now });
    traffic.setKnownLabels(['m1'], ['a:1']);
    for (let i = 0; i < 6; i++) traffic.record({ model: 'm1', node: 'a:1', status: 200, durationMs: 120, ttftMs: 30, outputTokens: 5 });
    traffic.record({ model: 'm1', node: null, status: 429, durationMs: 2, queueWaitMs: 1500 });
    traffic.recordAttemptError('a:1', 'upstream 503');
    time.now = NOW;
    const state = buildDashboardState({
      service: 'gateway',
      nowMs: NOW,
      nodes: [node('a:1', ['m1'], { error: 'old probe error', checkedAtMs: NOW - 10_000 })],
      traffic,
    });
    const a = state.fleet[0];
    expect(a.lastMinute).toMatchObject({ requests: 6, errors: 1 });
    expect(a.lastMinute!.ttftMsP50).toBeGreaterThan(25);
    expect(a.lastMinute!.tokensPerSec).toBeGreaterThan(0);
    expect(a.lastError).toEqual({ message: 'upstream 503', atMs: NOW - 4000, source: 'upstream' });
    expect(state.models[0].lastMinute).toMatchObject({ requests: 7, errors: 0 });
    expect(state.traffic!.points).toHaveLength(90);
    const last = state.traffic!.points.at(-1)!;
    expect(last).toMatchObject({ requests: 7, status2xx: 6, status4xx: 1, rejected429: 1, queued: 1, queueWaitMsMean: 1500 });
    expect(last.requestsPerSec).toBeCloseTo(7 / (last.durationMs / 1000), 2);
    expect(JSON.parse(JSON.stringify(state))).toEqual(state); // plain JSON, nothing lost on the wire
  });

  it('a scan report: found, closed, skipped by reason (silent targets counted as timeouts), the list bounded', () => {
    const rejected = [
      { node: 'g:8000', reason: 'gateway', error: 'answers as an ai-lb gateway' },
      { node: 'w:80', reason: 'http_status', error: 'GET /v1/models answered 404' },
      { node: 'r:81', reason: 'reset', error: 'ECONNRESET' },
      ...Array.from({ length: SCAN_SKIPPED_LISTED + 5 }, (_, i) => ({ node: `x:${i}`, reason: 'bad_shape', error: 'not a model list' })),
    ];
    const scan: DashboardScanInput = {
      startedAtMs: NOW - 2000,
      durationMs: 812.4,
      targets: 500,
      outcomes: { node: 2, closed: 420, gateway: 1, failed: rejected.length - 1 + 10 },
      rejected,
    };
    const state = buildDashboardState({ service: 'monitor', nowMs: NOW, nodes: [], scan });
    expect(state.scan).toMatchObject({
      startedAtMs: NOW - 2000,
      durationMs: 812,
      targets: 500,
      found: 2,
      closed: 420,
      skippedByReason: { gateway: 1, not_llm: SCAN_SKIPPED_LISTED + 6, error: 1, timeout: 10 },
      more: 8,
    });
    expect(state.scan!.skipped).toHaveLength(SCAN_SKIPPED_LISTED);
    expect(state.scan!.skipped[0]).toEqual({ target: 'g:8000', reason: 'gateway', detail: 'answers as an ai-lb gateway' });
  });

  it('polls at most every 2 s, never faster than 250 ms', () => {
    const at = (refreshMs?: number) => buildDashboardState({ service: 'gateway', nowMs: NOW, nodes: [], refreshMs }).refreshMs;
    expect(at()).toBe(2000);
    expect(at(10_000)).toBe(2000);
    expect(at(1000)).toBe(1000);
    expect(at(1)).toBe(250);
  });
});
