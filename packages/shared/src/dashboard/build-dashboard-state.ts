/**
 * Assembles the dashboard's DashboardState from narrow inputs, as a pure function: the
 * caller reads the fleet, the circuits and the in-flight counts (from its cache or the
 * store), hands in its traffic recorder and the last scan, and serialises the result.
 * Fields a node record does not have yet (engine load, surfaces, loaded models) are
 * tolerated when absent and shown as unknown.
 */
import type { CapacitySource, CircuitInfo, NodeId, ServerKind } from '../types.ts';
import {
  DASHBOARD_STATE_VERSION,
  SCAN_SKIPPED_LISTED,
  type DashboardEngineLoad,
  type DashboardModel,
  type DashboardNode,
  type DashboardRates,
  type DashboardScan,
  type DashboardSkipReason,
  type DashboardState,
  type DashboardTraffic,
} from './dashboard-state.ts';
import type { LabelSummary, TrafficView } from './traffic-recorder.ts';

/** Engine load as a poller may report it; every part optional. */
export interface EngineLoadInput {
  running?: number | null;
  waiting?: number | null;
  kvCacheUsage?: number | null;
  atMs?: number | null;
}

/** The part of a NodeState the dashboard reads (a NodeState fits). */
export interface DashboardNodeInput {
  node: NodeId;
  kind: ServerKind;
  healthy: boolean;
  models: readonly string[];
  /** Absent or null: the server does not say which models are loaded. */
  loadedModels?: readonly string[] | null;
  maxconn: number;
  capacitySource?: CapacitySource;
  latencyMs: number | null;
  lastSeenMs: number;
  checkedAtMs: number;
  error: string | null;
  serverLoad?: { running: number; waiting: number } | null;
  engineLoad?: EngineLoadInput | null;
  surfaces?: readonly string[] | null;
}

/** A scan as the monitor reports it (its ScanReport fits). */
export interface DashboardScanInput {
  startedAtMs: number;
  durationMs: number;
  targets: number;
  outcomes: { node: number; closed: number; gateway: number; failed: number };
  /** Targets that answered but are not nodes, with the probe's reason. */
  rejected: ReadonlyArray<{ node: string; reason: string; error: string }>;
}

export interface DashboardInput {
  service: 'gateway' | 'monitor';
  nowMs: number;
  nodes: readonly DashboardNodeInput[];
  /** Circuit per node; a node missing here is shown closed. */
  circuits?: Readonly<Record<NodeId, CircuitInfo>>;
  /** Fleet-wide slots in use per node; missing means 0. */
  inflight?: Readonly<Record<NodeId, number>>;
  /** Requests waiting for a slot, per model; absent when the queue is not known here. */
  queues?: Readonly<Record<string, number>> | null;
  /** Engine load per node, when it is kept apart from the node records (wins over the record's own). */
  engineLoad?: Readonly<Record<NodeId, EngineLoadInput>> | null;
  traffic?: TrafficView | null;
  scan?: DashboardScanInput | null;
  /** How often the page polls; at most (and by default) 2000 ms. */
  refreshMs?: number;
}

const RECENT_MS = 60_000;

export function buildDashboardState(input: DashboardInput): DashboardState {
  const nodes = [...input.nodes].sort((a, b) => compare(a.node, b.node));
  const traffic = input.traffic ?? null;
  const nodeRates = traffic?.summaries('node', RECENT_MS, input.nowMs);
  const modelRates = traffic?.summaries('model', RECENT_MS, input.nowMs);
  const upstreamErrors = traffic?.lastErrors();
  const queues = input.queues ?? null;

  const fleet = nodes.map((n): DashboardNode => {
    const circuit = input.circuits?.[n.node];
    const loaded = n.loadedModels == null ? null : new Set(n.loadedModels);
    return {
      node: n.node,
      kind: n.kind,
      healthy: n.healthy,
      circuit: circuit?.state ?? 'closed',
      circuitFailures: circuit?.failures ?? 0,
      circuitOpenUntilMs: circuit && circuit.state !== 'closed' && circuit.openUntilMs > 0 ? circuit.openUntilMs : null,
      models: n.models.map((id) => ({ id, loaded: loaded ? loaded.has(id) : null })),
      slots: { used: input.inflight?.[n.node] ?? 0, cap: n.maxconn > 0 ? n.maxconn : null, capSource: n.capacitySource ?? null },
      queued: queues ? n.models.reduce((sum, model) => sum + (queues[model] ?? 0), 0) : null,
      engineLoad: engineLoadOf(input.engineLoad?.[n.node] ?? n.engineLoad ?? null, n.serverLoad ?? null),
      surfaces: n.surfaces ? [...n.surfaces] : null,
      probeLatencyMs: n.latencyMs,
      lastMinute: traffic ? rates(nodeRates?.get(n.node)) : null,
      lastProbeMs: n.checkedAtMs,
      lastSeenMs: n.lastSeenMs,
      lastError: lastErrorOf(n, upstreamErrors?.get(n.node)),
    };
  });

  const models = buildModels(fleet, queues, traffic ? (id) => rates(modelRates?.get(id)) : () => null);
  return {
    version: DASHBOARD_STATE_VERSION,
    generatedAtMs: input.nowMs,
    service: input.service,
    refreshMs: Math.min(Math.max(input.refreshMs ?? 2000, 250), 2000),
    summary: {
      nodes: fleet.length,
      healthyNodes: fleet.filter((n) => n.healthy).length,
      openCircuits: fleet.filter((n) => n.circuit !== 'closed').length,
      models: models.length,
      inflight: fleet.reduce((sum, n) => sum + n.slots.used, 0),
      queued: queues ? Object.values(queues).reduce((sum, q) => sum + q, 0) : null,
    },
    fleet,
    models,
    traffic: traffic ? buildTraffic(traffic, input.nowMs) : null,
    scan: input.scan ? buildScan(input.scan) : null,
  };
}

function buildModels(
  fleet: readonly DashboardNode[],
  queues: Readonly<Record<string, number>> | null,
  ratesOf: (model: string) => DashboardRates | null,
): DashboardModel[] {
  const byModel = new Map<string, DashboardModel['nodes']>();
  const eligible = new Map<string, number>();
  for (const n of fleet) {
    for (const m of n.models) {
      const list = byModel.get(m.id) ?? [];
      byModel.set(m.id, list);
      list.push({ node: n.node, healthy: n.healthy, loaded: m.loaded });
      if (n.healthy && n.circuit !== 'open') eligible.set(m.id, (eligible.get(m.id) ?? 0) + 1);
    }
  }
  return [...byModel.keys()].sort(compare).map((id) => ({
    id,
    nodes: byModel.get(id)!,
    eligibleNodes: eligible.get(id) ?? 0,
    queued: queues ? (queues[id] ?? 0) : null,
    lastMinute: ratesOf(id),
  }));
}

function buildTraffic(traffic: TrafficView, nowMs: number): DashboardTraffic {
  return {
    bucketMs: traffic.bucketMs,
    windowMs: traffic.windowMs,
    points: traffic.series(nowMs).map((p) => ({
      startMs: p.startMs,
      durationMs: p.durationMs,
      requests: p.requests,
      requestsPerSec: round((p.requests * 1000) / p.durationMs, 3),
      status2xx: p.status2xx,
      status3xx: p.status3xx,
      status4xx: p.status4xx,
      status5xx: p.status5xx,
      rejected429: p.rejected429,
      failovers: p.failovers,
      queued: p.queued,
      queueWaitMsMean: roundOrNull(p.queueWaitMsMean),
      latencyMsP50: roundOrNull(p.latencyMsP50),
      latencyMsP99: roundOrNull(p.latencyMsP99),
    })),
  };
}

/** Probe reasons (the monitor's PROBE_ERROR_REASONS) -> why the dashboard says a target was skipped. */
const SKIP_REASON: Record<string, DashboardSkipReason> = {
  gateway: 'gateway',
  http_status: 'not_llm',
  invalid_json: 'not_llm',
  bad_shape: 'not_llm',
  too_large: 'not_llm',
  timeout: 'timeout',
  unreachable: 'timeout',
  dns: 'error',
  reset: 'error',
  other: 'error',
};

function buildScan(scan: DashboardScanInput): DashboardScan {
  const skippedByReason: Record<DashboardSkipReason, number> = { not_llm: 0, gateway: scan.outcomes.gateway, timeout: 0, error: 0 };
  const skipped = scan.rejected.map((r) => ({ target: r.node, reason: SKIP_REASON[r.reason] ?? 'error', detail: r.error.slice(0, 200) }));
  let listedFailures = 0;
  for (const s of skipped) {
    if (s.reason === 'gateway') continue;
    skippedByReason[s.reason]++;
    listedFailures++;
  }
  // The monitor lists only targets that answered; the rest of its failures said nothing in
  // time (timeout, unreachable): counted, not listed, so a /16 of silent hosts stays small.
  skippedByReason.timeout += Math.max(scan.outcomes.failed - listedFailures, 0);
  return {
    startedAtMs: scan.startedAtMs,
    durationMs: Math.round(scan.durationMs),
    targets: scan.targets,
    found: scan.outcomes.node,
    closed: scan.outcomes.closed,
    skippedByReason,
    skipped: skipped.slice(0, SCAN_SKIPPED_LISTED),
    more: Math.max(skipped.length - SCAN_SKIPPED_LISTED, 0),
  };
}

function engineLoadOf(engine: EngineLoadInput | null, server: { running: number; waiting: number } | null): DashboardEngineLoad | null {
  if (engine) {
    return {
      running: engine.running ?? null,
      waiting: engine.waiting ?? null,
      kvCacheUsage: engine.kvCacheUsage ?? null,
      atMs: engine.atMs ?? null,
    };
  }
  return server ? { running: server.running, waiting: server.waiting, kvCacheUsage: null, atMs: null } : null;
}

function lastErrorOf(n: DashboardNodeInput, upstream: { message: string; atMs: number } | undefined): DashboardNode['lastError'] {
  const probe = n.error === null ? null : { message: n.error, atMs: n.checkedAtMs, source: 'probe' as const };
  if (!upstream) return probe;
  if (probe && probe.atMs >= upstream.atMs) return probe;
  return { message: upstream.message, atMs: upstream.atMs, source: 'upstream' };
}

function rates(s: LabelSummary | undefined): DashboardRates {
  return {
    requests: s?.requests ?? 0,
    requestsPerSec: round(s?.requestsPerSec ?? 0, 3),
    errors: s?.errors ?? 0,
    latencyMsP50: roundOrNull(s?.latencyMsP50 ?? null),
    latencyMsP99: roundOrNull(s?.latencyMsP99 ?? null),
    ttftMsP50: roundOrNull(s?.ttftMsP50 ?? null),
    ttftMsP99: roundOrNull(s?.ttftMsP99 ?? null),
    tokensPerSec: round(s?.tokensPerSec ?? 0, 2),
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function roundOrNull(value: number | null): number | null {
  return value === null ? null : round(value, 1);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
