/**
 * The streaming phase of `pnpm bench`: the same streaming load through each relay in turn,
 * in interleaved rounds — direct (the stream upstream itself), the floor relay
 * (stream-floor.ts), the gateway targets already running, and nginx when installed.
 * The floor relay and nginx are started here and stopped by the caller's cleanup.
 */
import type { BenchOptions } from './bench-options.ts';
import type { BundledEntry } from './build-js-bundles.ts';
import { measureEventStream, type EventStreamResult } from './measure-event-stream.ts';
import { roundOrder } from './run-rounds.ts';
import { nginxBinary, startNginx } from './start-nginx.ts';
import type { BenchFleet, StreamUpstream } from './start-bench-fleet.ts';
import type { BenchTarget } from './start-target.ts';
import { spawnTsProcess } from '@ai-lb/testkit';
import { fileURLToPath } from 'node:url';
import { STREAM_TARGET_NAMES, type StreamRound, type StreamTargetName } from './summarize-stream.ts';

export interface StreamTarget {
  name: StreamTargetName;
  baseUrl: string;
  pids: () => number[];
  auxPids: number[];
  /** A node relay, started with bench/gc-probe.mjs under `--gc` (its one pid is counted). */
  node: boolean;
}

const FLOOR_ENTRY = fileURLToPath(new URL('./stream-floor.ts', import.meta.url));
const STREAM_PATHS = { chat: '/v1/chat/completions', messages: '/v1/messages' } as const;

/** The relays of the phase, in STREAM_TARGET_NAMES order; `onStop` registers what was started. */
export async function startStreamTargets(
  fleet: BenchFleet,
  gateways: readonly BenchTarget[],
  nodeArgs: string[],
  bundles: Record<BundledEntry, string> | undefined,
  onStop: (stop: () => Promise<void>) => void,
  log: (line: string) => void,
): Promise<StreamTarget[]> {
  const upstream = fleet.stream!;
  const floor = await spawnTsProcess<{ port: number }>(bundles?.['stream-floor'] ?? FLOOR_ENTRY, ['--upstreams', upstream.node], {
    nodeArgs,
    tsx: !bundles,
  });
  onStop(() => floor.stop());
  log(`started stream-floor http://127.0.0.1:${floor.ready.port} (pid ${floor.pid})`);
  const targets: StreamTarget[] = [
    { name: 'direct', baseUrl: upstream.url, pids: () => [], auxPids: [], node: false },
    { name: 'stream-floor', baseUrl: `http://127.0.0.1:${floor.ready.port}`, pids: () => [floor.pid], auxPids: [], node: true },
  ];
  for (const gateway of gateways) {
    if (!gateway.name.startsWith('gateway-') && !gateway.name.startsWith('baseline-')) continue;
    targets.push({
      name: gateway.name as StreamTargetName,
      baseUrl: gateway.baseUrl,
      pids: () => [gateway.pid!],
      auxPids: gateway.auxPids,
      node: true,
    });
  }
  const binary = nginxBinary();
  if (binary === null) {
    log('skipping nginx in the streaming phase: not installed');
  } else {
    const nginx = await startNginx(binary, [upstream.node]);
    onStop(() => nginx.stop());
    log(`started nginx ${nginx.baseUrl} (pid ${nginx.pid})`);
    targets.push({ name: 'nginx', baseUrl: nginx.baseUrl, pids: () => [nginx.pid, ...nginx.workerPids()], auxPids: [], node: false });
  }
  return targets.sort((a, b) => STREAM_TARGET_NAMES.indexOf(a.name) - STREAM_TARGET_NAMES.indexOf(b.name));
}

/** Unrecorded streaming through every relay (JIT and buffers of the event path), then the rounds. */
export async function runStreamRounds(
  targets: readonly StreamTarget[],
  upstream: StreamUpstream,
  options: BenchOptions,
  log: (line: string) => void,
): Promise<StreamRound[]> {
  const run = (target: StreamTarget, windowSec: number): Promise<EventStreamResult> =>
    measureEventStream({
      url: target.baseUrl + STREAM_PATHS[upstream.surface],
      surface: upstream.surface,
      streams: options.streams,
      eventsPerSec: options.eventsPerSec,
      windowSec,
      pids: target.pids,
      auxPids: target.auxPids,
      gcPid: options.gc && target.node ? target.pids()[0] : undefined,
      includeUsage: options.payload === 'engine',
      upstreamInflight: () => upstream.inflight(),
    });
  log(`warming up the streaming path of ${targets.map((t) => t.name).join(', ')}`);
  for (const target of targets) await run(target, 1);
  const rounds: StreamRound[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    log(`streaming round ${round}/${options.rounds}`);
    const result: StreamRound = {};
    for (const target of roundOrder(targets, round)) {
      const r = await run(target, options.streamWindowSec);
      result[target.name] = r;
      const cpu = Number.isNaN(r.cpuUsPerEvent)
        ? ''
        : `  CPU ${r.cpuUsPerEvent.toFixed(1)} µs/event (${r.syscallsPerEvent.toFixed(2)} syscalls)`;
      const aux = Number.isNaN(r.auxCpuUsPerEvent) ? '' : ` + redis ${r.auxCpuUsPerEvent.toFixed(1)}`;
      log(
        `  ${target.name.padEnd(15)} ${r.opened} streams, ${Math.round(r.eventsPerSec)} events/s${cpu}${aux}  delay p50 ${r.delayP50Ms.toFixed(2)} ms p99 ${r.delayP99Ms.toFixed(2)} ms${r.errors ? `  ${r.errors} errors` : ''}`,
      );
    }
    rounds.push(result);
  }
  return rounds;
}
