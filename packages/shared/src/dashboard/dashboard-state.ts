/**
 * The data contract between ai-lb and its dashboard page: what `GET /dashboard/state`
 * answers, as JSON. The page reads nothing else. `version` changes when a field changes
 * meaning or disappears; added fields keep the version (the page ignores what it does not
 * know). Times are epoch milliseconds; durations are milliseconds; null means "not known
 * here", never zero.
 */
import type { CircuitState, ServerKind } from '../types.ts';
import type { TrafficPoint } from './traffic-recorder.ts';

export const DASHBOARD_STATE_VERSION = 1;

/** Where the page polls its data (the page's own path is /dashboard). */
export const DASHBOARD_STATE_PATH = '/dashboard/state';

export interface DashboardState {
  /** DASHBOARD_STATE_VERSION of the process that answered. */
  version: typeof DASHBOARD_STATE_VERSION;
  /** When this state was assembled. */
  generatedAtMs: number;
  /** Which ai-lb service answered: the monitor has no traffic of its own. */
  service: 'gateway' | 'monitor';
  /** How often the page should poll, in ms (at most 2 s). */
  refreshMs: number;
  /** Counts for the page's headline. */
  summary: DashboardSummary;
  /** Every node record the answering process knows, sorted by node id. */
  fleet: DashboardNode[];
  /** Every model some node lists, sorted by id. */
  models: DashboardModel[];
  /** This process's requests over the last 15 minutes; null where it routes none (the monitor). */
  traffic: DashboardTraffic | null;
  /** The last discovery scan; null when this process has not seen one (a gateway without the monitor). */
  scan: DashboardScan | null;
}

export interface DashboardSummary {
  nodes: number;
  healthyNodes: number;
  /** Nodes whose circuit is open or half-open. */
  openCircuits: number;
  models: number;
  /** Slots in use across every replica, summed over the fleet. */
  inflight: number;
  /** Requests waiting for a free slot (all models). null when the queue is not known here. */
  queued: number | null;
}

export interface DashboardNode {
  /** "host:port". */
  node: string;
  kind: ServerKind;
  /** Whether the monitor's last probe succeeded. */
  healthy: boolean;
  /** The shared circuit breaker's state, and its consecutive failures. */
  circuit: CircuitState;
  circuitFailures: number;
  /** Until when an open circuit rejects requests; null when not open. */
  circuitOpenUntilMs: number | null;
  /** Models the node lists; `loaded` is null where the server does not say what is in memory. */
  models: Array<{ id: string; loaded: boolean | null }>;
  /** Slots held on this node by every gateway replica, and its cap (null: no cap). */
  slots: { used: number; cap: number | null; capSource: 'map' | 'detected' | 'default' | null };
  /** Requests waiting for a slot on a model this node serves (each could take a slot here); null when unknown. */
  queued: number | null;
  /** What the engine itself reports about its load; null when it reports nothing. */
  engineLoad: DashboardEngineLoad | null;
  /** API surfaces the node serves (chat, embeddings, …), where the monitor records them; else null. */
  surfaces: string[] | null;
  /** Round trip of the monitor's last model listing. */
  probeLatencyMs: number | null;
  /** This process's traffic to the node over the last minute (null on the monitor). */
  lastMinute: DashboardRates | null;
  /** The monitor's last probe (successful or not) and last successful one. */
  lastProbeMs: number;
  lastSeenMs: number;
  /** The most recent error: the monitor's failed probe, or a failed upstream attempt seen here. */
  lastError: { message: string; atMs: number; source: 'probe' | 'upstream' } | null;
}

export interface DashboardEngineLoad {
  /** Requests the engine is running now. */
  running: number | null;
  /** Requests queued inside the engine. */
  waiting: number | null;
  /** KV-cache use, 0..1. */
  kvCacheUsage: number | null;
  /** When the engine was last asked; null when not known. */
  atMs: number | null;
}

/** Traffic over a recent window (the dashboard uses the last minute). */
export interface DashboardRates {
  requests: number;
  requestsPerSec: number;
  /** Model rows: responses with status >= 500. Node rows: failed upstream attempts. */
  errors: number;
  latencyMsP50: number | null;
  latencyMsP99: number | null;
  /** Time to first token (streams). */
  ttftMsP50: number | null;
  ttftMsP99: number | null;
  /** Completion tokens per second, from the upstreams' usage. */
  tokensPerSec: number;
}

export interface DashboardModel {
  id: string;
  /** Nodes listing the model, sorted; `healthy` and `loaded` as in the fleet. */
  nodes: Array<{ node: string; healthy: boolean; loaded: boolean | null }>;
  /** Nodes a request could go to now: healthy and circuit not open. */
  eligibleNodes: number;
  /** Requests waiting for a slot for this model; null when unknown. */
  queued: number | null;
  /** This process's traffic for the model over the last minute (null on the monitor). */
  lastMinute: DashboardRates | null;
}

export interface DashboardTraffic {
  /** Width of one point (10 s) and of the whole series (15 min). */
  bucketMs: number;
  windowMs: number;
  /** Oldest first; the last point is the current, partial bucket (see durationMs). */
  points: DashboardTrafficPoint[];
}

/** A point of the traffic recorder's series as the page gets it: rounded, with the rate, without tokens. */
export interface DashboardTrafficPoint extends Omit<TrafficPoint, 'outputTokens'> {
  /** requests / durationMs, per second. */
  requestsPerSec: number;
}

export interface DashboardScan {
  /** When the scan started, and how long it took. */
  startedAtMs: number;
  durationMs: number;
  /** host:port pairs probed. */
  targets: number;
  /** LLM servers found. */
  found: number;
  /** Nothing listening (connection refused): the usual answer of a scanned port. */
  closed: number;
  /** Something answered but is not a node, counted by reason. */
  skippedByReason: Record<DashboardSkipReason, number>;
  /** The skipped targets that answered, at most SCAN_SKIPPED_LISTED of them; `more` counts the rest. */
  skipped: Array<{ target: string; reason: DashboardSkipReason; detail: string }>;
  more: number;
}

/**
 * Why a target is not a node: `not_llm` answered HTTP but not as an LLM server, `gateway`
 * is an ai-lb gateway (never recorded: no routing loops), `timeout` said nothing in time,
 * `error` any other failure (reset, unreachable, DNS).
 */
export type DashboardSkipReason = 'not_llm' | 'gateway' | 'timeout' | 'error';

export const SCAN_SKIPPED_LISTED = 50;
