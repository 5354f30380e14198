/**
 * The dashboard state read from the shared store: every node record with its fleet-wide
 * circuit, in-flight count and engine load reading (three reads), plus whatever this
 * process adds (its traffic, its last scan, the queue). The monitor's state endpoint is
 * this call; the gateway may build from its fleet cache instead.
 */
import type { StateStore } from '../state/state-store.ts';
import type { Clock } from '../types.ts';
import { buildDashboardState, type DashboardScanInput, type EngineLoadInput } from './build-dashboard-state.ts';
import type { DashboardState } from './dashboard-state.ts';
import type { TrafficView } from './traffic-recorder.ts';

export interface ReadDashboardStateDeps {
  service: 'gateway' | 'monitor';
  store: Pick<StateStore, 'listNodes' | 'getCircuits' | 'getInflight' | 'getEngineLoads'>;
  clock: Clock;
  traffic?: TrafficView | null;
  /** The last scan this process ran (the monitor), or null. */
  lastScan?: () => DashboardScanInput | null;
  /** Requests waiting per model, where this process knows them. */
  queues?: () => Readonly<Record<string, number>> | null;
}

export async function readDashboardState(deps: ReadDashboardStateDeps): Promise<DashboardState> {
  const nodes = await deps.store.listNodes();
  const ids = nodes.map((n) => n.node);
  const [circuits, inflight, readings] = await Promise.all([
    deps.store.getCircuits(ids),
    deps.store.getInflight(ids),
    deps.store.getEngineLoads(ids),
  ]);
  const engineLoad: Record<string, EngineLoadInput> = {};
  for (const [node, reading] of Object.entries(readings)) engineLoad[node] = { ...reading, atMs: reading.at };
  return buildDashboardState({
    service: deps.service,
    nowMs: deps.clock(),
    nodes,
    circuits,
    inflight,
    engineLoad,
    traffic: deps.traffic ?? null,
    scan: deps.lastScan?.() ?? null,
    queues: deps.queues?.() ?? null,
  });
}
