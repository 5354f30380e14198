/**
 * One scan: probe every target (bounded concurrency, one deadline per target), turn
 * answers into node records with their resolved capacity, count what happened, and —
 * when given a store — publish each target's result as soon as its probe completes.
 */
import type { Clock, NodeState, StateStore } from '@ai-lb/shared';
import { mapWithConcurrency } from './map-with-concurrency.ts';
import { probeTarget, type ProbeOutcome } from '../probes/probe-node.ts';
import { hostname } from 'node:os';
import { createScanPublisher, type PublishResult, type ScanFailure, type ScanPublisher } from '../publish.ts';
import { SERVER_KINDS, type MonitorMetrics, type TargetOutcome } from '../metrics.ts';
import type { ProbeClient } from '../probes/probe-client.ts';
import type { ProbeErrorReason } from '../probes/probe-error.ts';
import type { CapacityResolver } from '../resolve-capacity.ts';
import type { ScanTarget } from './targets.ts';

export interface ScanDeps {
  client: ProbeClient;
  targets: readonly ScanTarget[];
  concurrency: number;
  resolveCapacity: CapacityResolver;
  metrics: MonitorMetrics;
  clock: Clock;
  /** Absent for a read-only scan (`pnpm inventory` without --write). */
  store?: StateStore;
  ttlMs: number;
  /** How long records outlive their TTL as stale (FLEET_STALE_LIMIT_SECS); 0 when absent. */
  keepMs?: number;
  /** Who completed the scan, in the store's record of it; the scanner's host and pid when absent. */
  monitorId?: string;
}

/** A target that answered but is not a usable node (closed ports and silent hosts are left out). */
export interface RejectedTarget {
  node: string;
  reason: ProbeErrorReason | 'gateway';
  error: string;
}

export interface ScanReport {
  startedAtMs: number;
  checkedAtMs: number;
  durationMs: number;
  targets: number;
  outcomes: Record<TargetOutcome, number>;
  nodes: NodeState[];
  rejected: RejectedTarget[];
  published: PublishResult | null;
}

/** Failures that still mean "something answered here": worth showing in the inventory. */
const ANSWERED: ReadonlySet<ProbeErrorReason> = new Set(['http_status', 'invalid_json', 'bad_shape', 'too_large', 'reset']);

export async function runScan(deps: ScanDeps): Promise<ScanReport> {
  const startedAtMs = deps.clock();
  const started = performance.now();
  let publisher: ScanPublisher | null = null;
  if (deps.store) {
    try {
      publisher = createScanPublisher(deps.store, { ttlMs: deps.ttlMs, keepMs: deps.keepMs ?? 0, scan: await deps.store.beginScan() });
    } catch (error) {
      deps.metrics.scans.inc({ outcome: 'error' });
      throw error;
    }
  }
  const probed = await mapWithConcurrency(deps.targets, deps.concurrency, async (target) => {
    const outcome = await probeTarget(deps.client, target);
    const checkedAtMs = deps.clock();
    const node = outcome.status === 'node' ? toNodeState(outcome, deps.resolveCapacity, checkedAtMs) : null;
    if (publisher) await (node ? publisher.node(node) : publisher.failure(toFailure(outcome as FailedOutcome), checkedAtMs));
    return { outcome, node };
  });
  const checkedAtMs = deps.clock();
  const results = probed.map((p) => p.outcome);
  const nodes = probed.flatMap((p) => (p.node ? [p.node] : []));
  const outcomes = countOutcomes(results, deps.metrics);
  for (const kind of SERVER_KINDS) deps.metrics.nodesFound.set({ kind }, nodes.filter((n) => n.kind === kind).length);

  let published: PublishResult | null = null;
  if (publisher && deps.store) {
    try {
      published = publisher.finish();
      await deps.store.completeScan(publisher.scan, deps.monitorId ?? `scan:${hostname()}:${process.pid}`);
    } catch (error) {
      deps.metrics.scans.inc({ outcome: 'error' });
      throw error;
    }
  }
  const durationMs = performance.now() - started;
  deps.metrics.scanDuration.observe(durationMs / 1000);
  deps.metrics.scans.inc({ outcome: 'ok' });
  deps.metrics.lastScanTimestamp.set(deps.clock() / 1000);
  return {
    startedAtMs,
    checkedAtMs,
    durationMs,
    targets: deps.targets.length,
    outcomes,
    nodes,
    rejected: results.flatMap(toRejected),
    published,
  };
}

type FailedOutcome = Exclude<ProbeOutcome, { status: 'node' }>;

function toNodeState(
  outcome: Extract<ProbeOutcome, { status: 'node' }>,
  resolveCapacity: CapacityResolver,
  checkedAtMs: number,
): NodeState {
  const { target, facts } = outcome;
  return {
    node: target.node,
    host: target.host,
    port: target.port,
    kind: facts.kind,
    healthy: true,
    models: facts.models,
    loadedModels: facts.loadedModels,
    ...resolveCapacity(target.node, facts.detectedMaxconn),
    detectedMaxconn: facts.detectedMaxconn,
    latencyMs: facts.latencyMs,
    lastSeenMs: checkedAtMs,
    checkedAtMs,
    error: null,
    serverLoad: facts.serverLoad,
    ...(facts.surfaces ? { surfaces: facts.surfaces } : {}),
  };
}

function toFailure(outcome: FailedOutcome): ScanFailure {
  if (outcome.status === 'gateway') return { node: outcome.target.node, error: 'gateway: answers as an ai-lb gateway' };
  return { node: outcome.target.node, error: `${outcome.error.reason}: ${outcome.error.message}` };
}

function toRejected(outcome: ProbeOutcome): RejectedTarget[] {
  if (outcome.status === 'gateway') return [{ node: outcome.target.node, reason: 'gateway', error: 'answers as an ai-lb gateway' }];
  if (outcome.status !== 'failed' || !ANSWERED.has(outcome.error.reason)) return [];
  return [{ node: outcome.target.node, reason: outcome.error.reason, error: outcome.error.message }];
}

function countOutcomes(results: readonly ProbeOutcome[], metrics: MonitorMetrics): Record<TargetOutcome, number> {
  const counts: Record<TargetOutcome, number> = { node: 0, closed: 0, gateway: 0, failed: 0 };
  for (const result of results) {
    const outcome: TargetOutcome = result.status === 'failed' ? (result.error.reason === 'refused' ? 'closed' : 'failed') : result.status;
    counts[outcome]++;
    if (result.status === 'failed' && outcome === 'failed') metrics.probeErrors.inc({ reason: result.error.reason });
    for (const warning of result.warnings) metrics.probeErrors.inc({ reason: warning.reason });
    if (result.status === 'node')
      for (const [reason, count] of Object.entries(result.facts.droppedModelIds)) metrics.modelIdsDropped.inc({ reason }, count);
  }
  for (const [outcome, count] of Object.entries(counts)) if (count > 0) metrics.targetsProbed.inc({ outcome }, count);
  return counts;
}
