/**
 * The load poller as the monitor runs it: LOAD_POLL_MS apart (0 = off, then pollOnce
 * still works for tests and the inventory), each node bounded by the smaller of
 * PROBE_TIMEOUT_MS and one poll interval — a reading slower than that is stale anyway.
 */
import type { Registry } from 'prom-client';
import type { Clock, Config, Logger, StateStore } from '@ai-lb/shared';
import { createLoadClient } from './load-client.ts';
import { createLoadPollMetrics } from './load-metrics.ts';
import { createLoadPollLoop, type LoadPollReport } from './load-poll-loop.ts';

/** Nodes polled at once: a fleet is tens of servers; more workers only add sockets. */
export const LOAD_POLL_CONCURRENCY = 32;
/** The interval pollOnce uses for the TTL when polling is off. */
const OFF_INTERVAL_MS = 1000;

export interface LoadPolling {
  pollOnce(): Promise<LoadPollReport>;
  stop(): Promise<void>;
}

export function startLoadPolling(options: {
  config: Config;
  store: StateStore;
  clock: Clock;
  registry: Registry;
  log: Logger;
  /** false: no schedule, pollOnce only. */
  start: boolean;
  /** Scheduled rounds run only while this says so (the monitor lease); pollOnce always runs. */
  shouldRun?: () => boolean;
}): LoadPolling {
  const { config } = options;
  const intervalMs = config.loadPollMs > 0 ? config.loadPollMs : OFF_INTERVAL_MS;
  const client = createLoadClient({ timeoutMs: Math.min(config.probeTimeoutMs, intervalMs), apiKeys: config.nodeApiKeys });
  const loop = createLoadPollLoop({
    store: options.store,
    client,
    intervalMs,
    timeoutMs: Math.min(config.probeTimeoutMs, intervalMs),
    concurrency: Math.min(config.scanConcurrency, LOAD_POLL_CONCURRENCY),
    clock: options.clock,
    log: options.log,
    metrics: createLoadPollMetrics(options.registry),
    shouldRun: options.shouldRun,
  });
  if (options.start && config.loadPollMs > 0) loop.start();
  return {
    pollOnce: () => loop.pollOnce(),
    async stop() {
      await loop.stop();
      await client.close();
    },
  };
}
