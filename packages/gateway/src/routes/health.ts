import type { StateStore } from '@ai-lb/shared';
import type { Exchange } from '../http/exchange.ts';
import type { FleetCache, MonitorStatus } from '../routing/fleet-cache.ts';

const PING_TIMEOUT_MS = 1000;

/**
 * GET /health: 200 while the state store answers and at least MIN_HEALTHY_NODES nodes are
 * healthy; 503 with the reason otherwise (load balancers and compose healthchecks read it).
 *
 * Redis unreachable is 200 `"status":"degraded"` with the reason, not 503: every replica
 * loses the same Redis at the same moment, so a 503 would make the load balancer in front
 * pull the whole fleet at once — while each replica can still serve on its last fleet
 * state with local-only caps. The same holds when the monitor is gone: every replica keeps
 * routing on the last fleet (stale records, judged by the circuit breakers), so it is
 * "degraded", with the monitor's state in `monitor`. Monitoring alerts on the status field
 * and on ai_lb_state_store_degraded / ai_lb_monitor_up instead. A replica that never read a
 * fleet is still 503.
 */
export function healthRoute(store: StateStore, fleet: FleetCache, minHealthyNodes: number) {
  return async function handleHealth(exchange: Exchange): Promise<void> {
    const healthy = fleet.healthyCount();
    const status = fleet.monitorStatus();
    const base = { store: store.kind, healthy_nodes: healthy, nodes: fleet.nodes().length, monitor: monitorBody(status) };
    const reason = await unhealthyReason(store, fleet, healthy, minHealthyNodes);
    const degraded = [degradedReason(store), monitorReason(status)].filter((r) => r !== null).join('; ');
    if (reason === null && degraded !== '') return exchange.sendJson(200, { status: 'degraded', reason: degraded, ...base });
    if (reason === null) return exchange.sendJson(200, { status: 'ok', ...base });
    exchange.sendJson(503, {
      status: 'unavailable',
      reason,
      ...base,
      error: { message: reason, type: 'service_unavailable', param: null, code: 'unhealthy' },
    });
  };
}

function monitorBody(status: MonitorStatus) {
  return {
    alive: status.monitor !== null,
    id: status.monitor?.monitorId ?? null,
    last_scan: status.lastScan?.scan ?? null,
    last_scan_by: status.lastScan?.monitorId ?? null,
    last_scan_age_ms: status.lastScanAgeMs === null ? null : Math.round(status.lastScanAgeMs),
    stale_nodes: status.staleNodes,
    /** A model no node lists is a 404 only while this is true (else 503 no_fleet). */
    fleet_complete: status.authoritative,
  };
}

/**
 * The monitor is gone (it scanned before and holds no lease now) or records went stale:
 * the gateway routes on the last fleet it saw. A store no monitor ever scanned (records
 * written by hand or by `pnpm inventory --write`) is not reported as a lost monitor.
 */
function monitorReason(status: MonitorStatus): string | null {
  const parts: string[] = [];
  if (status.monitor === null && status.lastScan !== null) {
    const ago = status.lastScanAgeMs === null ? '' : ` (last scan ${Math.round(status.lastScanAgeMs / 1000)} s ago)`;
    parts.push(`no monitor is scanning${ago}`);
  }
  if (status.staleNodes > 0) {
    parts.push(
      `${status.staleNodes} node record${status.staleNodes === 1 ? ' is' : 's are'} stale (not refreshed by a monitor within NODE_TTL_SECS): serving the last known fleet, circuit breakers judge which nodes are up`,
    );
  }
  return parts.length === 0 ? null : `monitor: ${parts.join(', ')}`;
}

async function unhealthyReason(store: StateStore, fleet: FleetCache, healthy: number, min: number): Promise<string | null> {
  try {
    await withTimeout(store.ping(), PING_TIMEOUT_MS);
  } catch (error) {
    return `state store unreachable: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (!fleet.stateReadable) return `fleet state unreadable: ${fleet.lastError ?? 'unknown error'}`;
  if (healthy < min) return `${healthy} healthy node${healthy === 1 ? '' : 's'}, MIN_HEALTHY_NODES is ${min}`;
  return null;
}

/** Set while the store serves on local state because Redis is unreachable (StateStore.health). */
function degradedReason(store: StateStore): string | null {
  const { degraded, reason } = store.health();
  if (!degraded) return null;
  return `state store degraded: Redis unreachable, serving the last known fleet with per-replica capacity (${reason ?? 'unknown error'})`;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
