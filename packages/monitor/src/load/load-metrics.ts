/**
 * The load poller's metrics, on the monitor's registry. Labels are bounded: outcome
 * (ok | failed) and reason (PROBE_ERROR_REASONS).
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { PROBE_ERROR_REASONS } from '../probes/probe-error.ts';

export interface LoadPollMetrics {
  polls: Counter<'outcome'>;
  pollErrors: Counter<'reason'>;
  roundDuration: Histogram;
}

export function createLoadPollMetrics(registry: Registry): LoadPollMetrics {
  const registers = [registry];
  const metrics: LoadPollMetrics = {
    polls: new Counter({
      name: 'ai_lb_monitor_load_polls_total',
      help: 'Engine load polls of one node, by outcome (failed: no reading published for the node this round).',
      labelNames: ['outcome'],
      registers,
    }),
    pollErrors: new Counter({
      name: 'ai_lb_monitor_load_poll_errors_total',
      help: 'Engine load polls that gave no reading, by reason (bad_shape includes implausible numbers).',
      labelNames: ['reason'],
      registers,
    }),
    roundDuration: new Histogram({
      name: 'ai_lb_monitor_load_poll_round_seconds',
      help: 'Wall time of one load poll of every known node, publishing included.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
  };
  for (const outcome of ['ok', 'failed']) metrics.polls.inc({ outcome }, 0);
  for (const reason of PROBE_ERROR_REASONS) metrics.pollErrors.inc({ reason }, 0);
  return metrics;
}
