/**
 * Polls every known node's engine load every LOAD_POLL_MS and publishes the readings in
 * one store write, with a TTL of 3 poll intervals (older readings are ignored anyway).
 *
 * - One round at a time: the next starts LOAD_POLL_MS after the previous one started, or
 *   at once when it took longer — never two rounds at once.
 * - Each node is bounded by timeoutMs, whatever its poller asks (two GETs for a fallback),
 *   and at most `concurrency` nodes are polled at once: a node that hangs costs one worker
 *   for timeoutMs, never the round of the others.
 * - A node that times out, answers garbage or lies (negative, NaN, absurd numbers) gets
 *   no reading this round: routing then treats it on ai-lb's own counts.
 * Healthy nodes only: an unhealthy one would cost a timeout per round for nothing.
 */
import {
  engineLoadMaxAgeMs,
  type Clock,
  type EngineLoadReading,
  type Logger,
  type NodeId,
  type NodeState,
  type StateStore,
} from '@ai-lb/shared';
import { mapWithConcurrency } from '../scan/map-with-concurrency.ts';
import { ProbeError, type ProbeErrorReason } from '../probes/probe-error.ts';
import type { LoadClient } from './load-client.ts';
import type { LoadPollMetrics } from './load-metrics.ts';
import { hasLoadPoller, pollNodeLoad } from './poll-node-load.ts';

export interface LoadPollLoopOptions {
  store: StateStore;
  client: LoadClient;
  intervalMs: number;
  /** Per node, every request of its poller included. */
  timeoutMs: number;
  concurrency: number;
  clock: Clock;
  log: Logger;
  metrics?: LoadPollMetrics;
  /** Scheduled rounds are skipped while this answers false (another monitor holds the lease). */
  shouldRun?: () => boolean;
}

export interface LoadPollReport {
  readings: EngineLoadReading[];
  failures: { node: NodeId; reason: ProbeErrorReason; error: string }[];
  durationMs: number;
  /** Whether the readings reached the store. */
  published: boolean;
}

export interface LoadPollLoop {
  /** Polls at once, then every intervalMs, until stop(). */
  start(): void;
  /** One round now, or the one running. */
  pollOnce(): Promise<LoadPollReport>;
  /** Resolves once no round runs and none is scheduled. */
  stop(): Promise<void>;
}

export function createLoadPollLoop(options: LoadPollLoopOptions): LoadPollLoop {
  const { intervalMs, clock, log } = options;
  let running: Promise<LoadPollReport> | null = null;
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;
  /** Last failure reason per node, so a broken endpoint is logged when it breaks and heals, not every round. */
  const failing = new Map<NodeId, ProbeErrorReason>();

  function pollOnce(): Promise<LoadPollReport> {
    running ??= round(options, failing).finally(() => (running = null));
    return running;
  }

  function schedule(startedAt: number): void {
    if (stopped) return;
    const wait = Math.max(0, intervalMs - (clock() - startedAt));
    timer = setTimeout(tick, wait);
    timer.unref();
  }

  function tick(): void {
    const startedAt = clock();
    if (options.shouldRun?.() === false) return schedule(startedAt);
    pollOnce()
      .catch((error: unknown) => log.warn({ error: String(error) }, 'engine load poll failed'))
      .finally(() => schedule(startedAt));
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      tick();
    },
    pollOnce,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running?.catch(() => undefined);
    },
  };
}

async function round(opts: LoadPollLoopOptions, failingNodes: Map<NodeId, ProbeErrorReason>): Promise<LoadPollReport> {
  const { store, intervalMs, log } = opts;
  const started = performance.now();
  const nodes = (await store.listNodes()).filter((n) => n.healthy && hasLoadPoller(n.kind));
  const { readings, failures } = await pollEngineLoads(nodes, opts);
  noteOutcomes(readings, failures, failingNodes, nodes, opts);
  let published = false;
  try {
    await store.putEngineLoads(readings, engineLoadMaxAgeMs(intervalMs));
    published = true;
  } catch (error) {
    log.warn({ error: error instanceof Error ? error.message : String(error) }, 'could not publish engine loads');
  }
  const durationMs = performance.now() - started;
  opts.metrics?.roundDuration.observe(durationMs / 1000);
  return { readings, failures, durationMs, published };
}

export type PollEngineLoadsOptions = Pick<LoadPollLoopOptions, 'client' | 'timeoutMs' | 'concurrency' | 'clock'>;

/**
 * One poll of the given nodes (kinds without a load endpoint are skipped), without
 * publishing: the loop's round, and `pnpm inventory`'s load column.
 */
export async function pollEngineLoads(
  nodes: readonly NodeState[],
  options: PollEngineLoadsOptions,
): Promise<Pick<LoadPollReport, 'readings' | 'failures'>> {
  const pollable = nodes.filter((n) => hasLoadPoller(n.kind));
  const results = await mapWithConcurrency(pollable, options.concurrency, (node) => pollWithDeadline(options, node));
  const readings: EngineLoadReading[] = [];
  const failures: LoadPollReport['failures'] = [];
  for (const [i, result] of results.entries()) {
    if (result instanceof ProbeError) failures.push({ node: pollable[i].node, reason: result.reason, error: result.message });
    else readings.push(result);
  }
  return { readings, failures };
}

async function pollWithDeadline(options: PollEngineLoadsOptions, node: NodeState): Promise<EngineLoadReading | ProbeError> {
  let deadline: NodeJS.Timeout | undefined;
  const expired = new Promise<ProbeError>((resolve) => {
    deadline = setTimeout(() => resolve(new ProbeError('timeout', `no engine load within ${options.timeoutMs} ms`)), options.timeoutMs);
  });
  const get = options.client.forNode({ node: node.node, host: node.host, port: node.port });
  const poll = pollNodeLoad(node, get, options.clock).catch((error: unknown) => {
    if (error instanceof ProbeError) return error;
    return new ProbeError('other', error instanceof Error ? error.message : String(error), { cause: error });
  });
  try {
    return await Promise.race([poll, expired]);
  } finally {
    clearTimeout(deadline);
  }
}

function noteOutcomes(
  readings: readonly EngineLoadReading[],
  failures: LoadPollReport['failures'],
  failing: Map<NodeId, ProbeErrorReason>,
  polled: readonly NodeState[],
  { metrics, log }: LoadPollLoopOptions,
): void {
  metrics?.polls.inc({ outcome: 'ok' }, readings.length);
  metrics?.polls.inc({ outcome: 'failed' }, failures.length);
  for (const failure of failures) {
    metrics?.pollErrors.inc({ reason: failure.reason });
    if (failing.get(failure.node) !== failure.reason) log.warn(failure, 'engine load unavailable; routing on ai-lb counts alone');
    failing.set(failure.node, failure.reason);
  }
  for (const reading of readings) {
    if (failing.delete(reading.node)) log.info({ node: reading.node }, 'engine load readable again');
  }
  // Bounded by the fleet: nodes no longer polled are forgotten.
  const live = new Set(polled.map((n) => n.node));
  for (const node of failing.keys()) if (!live.has(node)) failing.delete(node);
}
