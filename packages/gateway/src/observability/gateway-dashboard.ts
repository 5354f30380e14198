/**
 * The dashboard on the gateway: GET /dashboard and its assets (open: the page holds no
 * data) and GET /dashboard/state (the data, behind GATEWAY_API_KEYS like the API), as rows
 * of the endpoint table. The state is built from this process's fleet cache (records,
 * circuits, fleet-wide slots, engine load), its waiting requests, and its traffic recorder.
 *
 * The recorder is fed off the requests' path: GatewayMetrics keeps each finished request's
 * summary, and this drains them into the recorder shortly after (and before each state),
 * so a request costs one push, not the recorder's bucket and histogram work.
 */
import {
  buildDashboardState,
  DASHBOARD_STATE_HEADERS,
  GATEWAY_MARK_HEADER,
  GatewayError,
  serveDashboard,
  TrafficRecorder,
  type Clock,
  type DashboardScanInput,
  type DashboardState,
  type EngineLoadInput,
  type NodeId,
} from '@ai-lb/shared';
import type { Exchange } from '../http/exchange.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { FleetCache } from '../routing/fleet-cache.ts';
import type { RequestSummary } from './request-summary.ts';

const DRAIN_MS = 25;

export interface GatewayDashboardDeps {
  fleet: Pick<FleetCache, 'nodes' | 'circuit' | 'inflightOf' | 'engineLoadOf'>;
  /** This process's waiting requests per queue group. */
  queue: { sizesByGroup(): Map<string, number> };
  metrics: Pick<GatewayMetrics, 'keepFinished' | 'takeFinished' | 'onAttemptFailure'>;
  clock: Clock;
  /** The last discovery scan, where a monitor runs in this process (`pnpm start`). */
  lastScan?: () => DashboardScanInput | null;
  /** How long a finished request may wait to be drained into the recorder (default 25 ms). */
  drainMs?: number;
}

export interface GatewayDashboard {
  /** GET /dashboard and GET /dashboard/assets/:name. */
  page(exchange: Exchange): void;
  /** GET /dashboard/state. */
  state(exchange: Exchange): void;
  /** The state as the page gets it (tests, and state()). */
  build(): DashboardState;
  traffic: TrafficRecorder;
  stop(): void;
}

export function createGatewayDashboard(deps: GatewayDashboardDeps): GatewayDashboard {
  const { fleet, metrics, clock } = deps;
  const traffic = new TrafficRecorder({ clock });
  let labelsOf: unknown = null;
  const drain = () => {
    const nodes = fleet.nodes();
    // A new fleet snapshot may know other models and nodes: only those get labels of their own.
    if (nodes !== labelsOf) {
      labelsOf = nodes;
      traffic.setKnownLabels(
        nodes.flatMap((n) => n.models),
        nodes.map((n) => n.node),
      );
    }
    for (const summary of metrics.takeFinished()) traffic.record(trafficRecord(summary));
  };
  const stopDraining = metrics.keepFinished(drain, deps.drainMs ?? DRAIN_MS);
  metrics.onAttemptFailure = (node, message) => traffic.recordAttemptError(node, message);

  const build = (): DashboardState => {
    drain();
    const nodes = fleet.nodes();
    const circuits: Record<NodeId, ReturnType<typeof fleet.circuit>> = {};
    const inflight: Record<NodeId, number> = {};
    const engineLoad: Record<NodeId, EngineLoadInput> = {};
    for (const n of nodes) {
      circuits[n.node] = fleet.circuit(n.node);
      inflight[n.node] = fleet.inflightOf(n.node);
      const reading = fleet.engineLoadOf(n.node);
      if (reading !== undefined) engineLoad[n.node] = { ...reading, atMs: reading.at };
    }
    return buildDashboardState({
      service: 'gateway',
      nowMs: clock(),
      nodes,
      circuits,
      inflight,
      queues: queuesByModel(deps.queue.sizesByGroup(), nodes),
      engineLoad,
      traffic,
      scan: deps.lastScan?.() ?? null,
    });
  };

  return {
    page(exchange) {
      const answer = serveDashboard(exchange.path, exchange.req.headers['if-none-match']);
      if (answer === null)
        throw new GatewayError('route_not_found', `${exchange.path.slice(0, 200)} is not part of the dashboard: open /dashboard`);
      if (answer.status === 304) {
        exchange.res.writeHead(304, { [GATEWAY_MARK_HEADER]: '1', 'x-request-id': exchange.requestId, ...answer.headers });
        return void exchange.res.end();
      }
      exchange.send(200, answer.headers, answer.body);
    },
    state(exchange) {
      exchange.send(200, DASHBOARD_STATE_HEADERS, JSON.stringify(build()));
    },
    build,
    traffic,
    stop() {
      stopDraining();
    },
  };
}

/** What the traffic recorder counts of a finished request. A stream cut by an error event is a failure, whatever its head said. */
function trafficRecord(s: RequestSummary) {
  return {
    model: s.model,
    node: s.node,
    status: s.outcome === 'stream_error' ? 502 : s.status,
    durationMs: s.durationMs,
    ttftMs: s.ttftMs,
    outputTokens: s.completionTokens,
    failovers: s.failovers,
    queueWaitMs: s.queueWaitMs,
  };
}

/**
 * Waiting requests per model. A `?node=` request waits in a group of its own, "model@node";
 * it is counted under its model (a node id never holds "@", a model id may).
 */
function queuesByModel(groups: Map<string, number>, nodes: ReadonlyArray<{ node: NodeId }>): Record<string, number> {
  const queues: Record<string, number> = {};
  const nodeIds = new Set(nodes.map((n) => n.node));
  for (const [group, size] of groups) {
    const at = group.lastIndexOf('@');
    const model = at > 0 && nodeIds.has(group.slice(at + 1)) ? group.slice(0, at) : group;
    queues[model] = (queues[model] ?? 0) + size;
  }
  return queues;
}
