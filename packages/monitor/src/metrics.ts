/**
 * Every metric of the monitor, on its OWN registry: in `pnpm start` gateway and monitor
 * share one process, and the default global registry would mix (or clash) their metrics.
 * Labels are bounded sets: outcome, reason (PROBE_ERROR_REASONS, MODEL_ID_DROP_REASONS) and kind (ServerKind).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { MODEL_ID_DROP_REASONS, type ServerKind } from '@ai-lb/shared';
import { PROBE_ERROR_REASONS } from './probes/probe-error.ts';

export const SERVER_KINDS: readonly ServerKind[] = ['openai', 'ollama', 'llamacpp', 'vllm', 'lmstudio', 'sglang'];

/** node: an LLM server; closed: connection refused; gateway: an ai-lb gateway (skipped); failed: anything else. */
export type TargetOutcome = 'node' | 'closed' | 'gateway' | 'failed';

export interface MonitorMetrics {
  registry: Registry;
  scanDuration: Histogram;
  scans: Counter<'outcome'>;
  targetsProbed: Counter<'outcome'>;
  nodesFound: Gauge<'kind'>;
  probeErrors: Counter<'reason'>;
  modelIdsDropped: Counter<'reason'>;
  scansSkipped: Counter;
  lastScanTimestamp: Gauge;
  leaseHeld: Gauge;
}

export function createMonitorMetrics(): MonitorMetrics {
  const registry = new Registry();
  const registers = [registry];
  const metrics: MonitorMetrics = {
    registry,
    scanDuration: new Histogram({
      name: 'ai_lb_monitor_scan_duration_seconds',
      help: 'Wall time of one scan of every target, probes and state writes included.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    scans: new Counter({
      name: 'ai_lb_monitor_scans_total',
      help: 'Scans completed, by outcome (error: the state store could not be written).',
      labelNames: ['outcome'],
      registers,
    }),
    targetsProbed: new Counter({
      name: 'ai_lb_monitor_targets_probed_total',
      help: 'Targets (host:port) probed, by outcome: node, closed (refused), gateway (skipped), failed.',
      labelNames: ['outcome'],
      registers,
    }),
    nodesFound: new Gauge({
      name: 'ai_lb_monitor_nodes_found',
      help: 'Healthy nodes found by the last scan, by server kind.',
      labelNames: ['kind'],
      registers,
    }),
    probeErrors: new Counter({
      name: 'ai_lb_monitor_probe_errors_total',
      help: 'Probes that failed, by reason (a refused connection is not an error: see targets_probed_total).',
      labelNames: ['reason'],
      registers,
    }),
    modelIdsDropped: new Counter({
      name: 'ai_lb_monitor_model_ids_dropped_total',
      help: 'Model ids a node listed that were not recorded, by reason: too_long, control_character, malformed_unicode, over_cap.',
      labelNames: ['reason'],
      registers,
    }),
    scansSkipped: new Counter({
      name: 'ai_lb_monitor_scans_skipped_total',
      help: 'Scheduled scans skipped because the previous scan was still running.',
      registers,
    }),
    lastScanTimestamp: new Gauge({
      name: 'ai_lb_monitor_last_scan_timestamp_seconds',
      help: 'When the last scan completed (epoch seconds).',
      registers,
    }),
    leaseHeld: new Gauge({
      name: 'ai_lb_monitor_lease_held',
      help: '1 while this monitor holds the monitor lease and scans, 0 while it stands by for another.',
      registers,
    }),
  };
  // Every label value exists from the start, so a dashboard sees 0 rather than no series.
  for (const kind of SERVER_KINDS) metrics.nodesFound.set({ kind }, 0);
  for (const reason of PROBE_ERROR_REASONS) if (reason !== 'refused') metrics.probeErrors.inc({ reason }, 0);
  for (const reason of MODEL_ID_DROP_REASONS) metrics.modelIdsDropped.inc({ reason }, 0);
  return metrics;
}
