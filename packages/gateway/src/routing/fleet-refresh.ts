/**
 * What one fleet refresh derives from the store's answers, off the request path: the
 * records the store lost without a scan passing them over (kept), per node what routing
 * reads beside its record (engine reading, loaded models, NODE_PRIORITY, the store hints),
 * and what the listing says about the monitor.
 */
import {
  engineLoadMaxAgeMs,
  type CompletedScan,
  type EngineLoadReading,
  type FleetSnapshot,
  type MonitorLease,
  type NodeId,
} from '@ai-lb/shared';
import { storeHints, toEngineAwareCandidate } from './engine-candidate.ts';
import type { FleetRecord } from './fleet-snapshot.ts';

/** Per node, what routing reads beside its record; computed at refresh, never per request. */
export interface RouteInfo {
  engine: EngineLoadReading | null;
  /** The engine's loaded models when it tells (Ollama, LM Studio), else null. */
  loaded: ReadonlySet<string> | null;
  priority: number;
  slots: number | null;
  /**
   * least_loaded's store hints: the outside load as of this refresh — the reading and
   * ai-lb's in-flight count read together, so requests ai-lb sends after the reading are
   * not mistaken for fewer outside ones — and the slots.
   */
  hints: { extraLoad: number; slots: number };
}

export function routeInfoOf(
  records: readonly FleetRecord[],
  read: { inflight: Record<NodeId, number>; loads: Record<NodeId, EngineLoadReading> },
  options: { priorities: ReadonlyMap<string, number>; loadPollMs: number; now: number },
): Map<NodeId, RouteInfo> {
  const route = new Map<NodeId, RouteInfo>();
  const maxReadingAgeMs = engineLoadMaxAgeMs(options.loadPollMs);
  for (const { state } of records) {
    const c = toEngineAwareCandidate({
      node: state,
      model: '',
      inflight: read.inflight[state.node] ?? 0,
      reading: read.loads[state.node],
      priorities: options.priorities,
      now: options.now,
      maxReadingAgeMs,
    });
    const loaded = c.engine?.loadedModels ? new Set(c.engine.loadedModels) : null;
    route.set(state.node, { engine: c.engine, loaded, priority: c.priority, slots: c.slots, hints: storeHints(c) });
  }
  return route;
}

/**
 * Remembers each record as last listed. While the store knows of a completed scan, a record
 * it stops listing is gone (a scan passed it over, or its keep time ran out). A store that
 * lists no completed scan at all has lost its data (Redis restarted empty, or flushed):
 * the records it no longer lists were lost, not found gone, and are kept, stale, until the
 * keep time they had (their TTL + FLEET_STALE_LIMIT_SECS) or until a scan completes.
 */
export class ListedRecords {
  private readonly last = new Map<NodeId, { record: FleetRecord; keepUntilMs: number }>();

  constructor(private readonly staleLimitMs: number) {}

  /** The listing plus the lost records, sorted by node id. `now` is the local clock. */
  withLost(fleet: FleetSnapshot, now: number): FleetRecord[] {
    // Written out, not `{ ...n, retained: false }`: per record, every refresh, and no
    // spread-then-new-property belongs on a path that runs that often (docs/architecture.md).
    // `Required`: a field added to FleetRecord, optional or not, fails to compile until copied here.
    const records: FleetRecord[] = fleet.nodes.map(
      ({ state, freshness, freshUntilMs, scan }) =>
        ({ state, freshness, freshUntilMs, scan, retained: false }) satisfies Required<FleetRecord>,
    );
    const listed = new Set(records.map((r) => r.state.node));
    let lost = false;
    for (const [id, last] of this.last) {
      if (listed.has(id)) continue;
      if (fleet.lastScan === null && now < last.keepUntilMs) {
        records.push({ ...last.record, freshness: 'stale', retained: true });
        lost = true;
      } else {
        this.last.delete(id);
      }
    }
    for (const record of records) {
      if (record.retained) continue;
      const keepUntilMs = now + Math.max(0, record.freshUntilMs - fleet.nowMs) + this.staleLimitMs;
      this.last.set(record.state.node, { record, keepUntilMs });
    }
    if (lost) records.sort((a, b) => (a.state.node < b.state.node ? -1 : a.state.node > b.state.node ? 1 : 0));
    return records;
  }
}

/** What the store's last listing said about the monitor, and when (store and local clocks). */
export interface MonitorView {
  monitor: MonitorLease | null;
  lastScan: CompletedScan | null;
  storeNowMs: number;
  readAtMs: number;
}

export const NO_MONITOR: MonitorView = { monitor: null, lastScan: null, storeNowMs: 0, readAtMs: 0 };

/** The monitor as /health and the metrics report it. */
export interface MonitorStatus {
  monitor: MonitorLease | null;
  lastScan: CompletedScan | null;
  /** Since the last completed scan, now; null before the first. */
  lastScanAgeMs: number | null;
  staleNodes: number;
  /** A model no node lists is unknown (404) only while this holds; otherwise the fleet may be incomplete (503). */
  authoritative: boolean;
}

export function monitorStatusOf(view: MonitorView, records: Iterable<FleetRecord>, now: number): MonitorStatus {
  let staleNodes = 0;
  let nodes = 0;
  for (const record of records) {
    nodes++;
    if (record.freshness === 'stale') staleNodes++;
  }
  const { monitor, lastScan } = view;
  return {
    monitor,
    lastScan,
    lastScanAgeMs: lastScan === null ? null : Math.max(0, storeNowOf(view, now) - lastScan.completedAtMs),
    staleNodes,
    authoritative: isAuthoritative(view, nodes),
  };
}

/**
 * Whether the fleet is complete enough to call a model unknown: a live monitor whose last
 * completed scan ran under its current lease (a monitor that just took over, or a Redis
 * that restarted empty, has not looked at every target yet), and some node at all.
 */
export function isAuthoritative(view: MonitorView, nodeCount: number): boolean {
  const { monitor, lastScan } = view;
  if (monitor === null || lastScan === null || nodeCount === 0) return false;
  return lastScan.monitorId === monitor.monitorId && lastScan.completedAtMs >= monitor.sinceMs;
}

/** The store's clock now: as read, moved on by the local time since. */
export function storeNowOf(view: MonitorView, now: number): number {
  return view.storeNowMs + (now - view.readAtMs);
}
