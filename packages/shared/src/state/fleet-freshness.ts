import { compareNodeIds } from '../node-id.ts';
import type { NodeState } from '../types.ts';
import type { FleetNode, NodeFreshness } from './state-store.ts';

/**
 * How both stores judge a node record (StateStore.listFleet), in one place.
 *
 * A record is fresh until its TTL. After that, what its age means depends on the monitor:
 * if a scan newer than the one that last wrote the record has completed, a live monitor
 * looked for the server and did not find it — the server is gone. If none has, the monitor
 * itself is gone (killed, stalled, partitioned from Redis, restarting), and the record is
 * still the best knowledge of the fleet: stale, but usable. This is decided by scan numbers,
 * not by a heartbeat's age, so it needs no clock agreement between monitors and has no
 * window where a dying monitor's heartbeat outlives the records it no longer refreshes,
 * and a restarted monitor does not drop the fleet before its first scan has put it back.
 */
export interface StoredNode {
  state: NodeState;
  freshUntilMs: number;
  scan: number;
}

/** `gone` records are left out of every listing. Alive while now ≤ freshUntilMs, like a Redis PX. */
export function freshnessOf(
  record: Pick<StoredNode, 'freshUntilMs' | 'scan'>,
  nowMs: number,
  completedScan: number,
): NodeFreshness | 'gone' {
  if (nowMs <= record.freshUntilMs) return 'fresh';
  return record.scan < completedScan ? 'gone' : 'stale';
}

/** The records a listing shows: judged, gone ones dropped, sorted by node id. */
export function judgeFleet(records: readonly StoredNode[], nowMs: number, completedScan: number): FleetNode[] {
  const nodes: FleetNode[] = [];
  for (const record of records) {
    const freshness = freshnessOf(record, nowMs, completedScan);
    if (freshness !== 'gone') nodes.push({ state: record.state, freshness, freshUntilMs: record.freshUntilMs, scan: record.scan });
  }
  return nodes.sort((a, b) => compareNodeIds(a.state.node, b.state.node));
}

/** putNode's options, checked the same way by both stores. */
export function validatePutNodeOptions(options: { keepMs?: number; scan?: number } | undefined): { keepMs: number; scan: number } {
  const keepMs = options?.keepMs ?? 0;
  const scan = options?.scan ?? 0;
  if (!Number.isInteger(keepMs) || keepMs < 0) throw new TypeError(`putNode: keepMs must be an integer ≥ 0, got ${String(keepMs)}`);
  if (!Number.isSafeInteger(scan) || scan < 0) throw new TypeError(`putNode: scan must be an integer ≥ 0, got ${String(scan)}`);
  return { keepMs, scan };
}

/** claimMonitorLease / completeScan arguments, checked the same way by both stores. */
export function validateMonitorId(operation: string, monitorId: string): void {
  if (typeof monitorId !== 'string' || monitorId === '') throw new TypeError(`${operation}: monitorId must be a non-empty string`);
}
