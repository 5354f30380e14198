/**
 * The bench's own upstreams (fake LLM servers, each its own process) and, when a target
 * needs it, its own redis-server. Every target forwards to these same upstreams, and their
 * latency is switched at run time (/__fake/config), so all targets meet identical upstreams.
 */
import { fileURLToPath } from 'node:url';
import type { Payload } from './bench-options.ts';
import type { StreamSurface } from './stream-upstream.ts';
import { spawnTsProcess, startFakeLlmServer, startRedis, type FakeLlmProcess, type RedisServer } from '@ai-lb/testkit';

/** The model the load asks for, and the fake server's model that streams two chunks then stalls. */
export const BENCH_MODEL = 'bench-model';
export const HELD_STREAM_MODEL = 'fault-stall-stream';

/** The streaming phase's upstream (stream-upstream.ts): serves only STREAM_MODEL. */
export interface StreamUpstream {
  /** chat: an OpenAI-compatible server; messages: a vLLM that serves Anthropic's Messages API too. */
  surface: StreamSurface;
  node: string;
  port: number;
  url: string;
  pid: number;
  /** Streams it is sending right now. */
  inflight(): Promise<number>;
  stop(): Promise<void>;
}

export interface BenchFleet {
  upstreams: FakeLlmProcess[];
  /** Present when the streaming phase runs. */
  stream: StreamUpstream | null;
  redis: RedisServer | null;
  /** Delay every upstream applies before answering (the added-latency phase uses 50 ms). */
  setLatencyMs(ms: number): Promise<void>;
  /** Requests the upstreams hold open right now. */
  inflight(): Promise<number>;
  /** Clears the upstreams' per-request records (they grow with every request). */
  resetStats(): Promise<void>;
  stop(): Promise<void>;
}

export async function startBenchFleet(options: {
  upstreams: number;
  redis: boolean;
  /** Events per second per stream of the streaming phase's upstream; 0 = no such upstream. */
  streamEventsPerSec?: number;
  /** `--payload engine`: answers and stream chunks in real engines' shapes. */
  payload?: Payload;
  streamSurface?: StreamSurface;
}): Promise<BenchFleet> {
  const started: Array<{ stop(): Promise<void> }> = [];
  const stopAll = async () => {
    await Promise.allSettled(started.reverse().map((p) => p.stop()));
  };
  try {
    const upstreams: FakeLlmProcess[] = [];
    for (let i = 0; i < options.upstreams; i++) {
      const upstream = await startFakeLlmServer({ models: [BENCH_MODEL, HELD_STREAM_MODEL] });
      started.push(upstream);
      if (options.payload === 'engine') await upstream.configure({ answerShape: 'engine' });
      upstreams.push(upstream);
    }
    const redis = options.redis ? await startRedis() : null;
    if (redis) started.push(redis);
    const stream = options.streamEventsPerSec
      ? await startStreamUpstream(options.streamEventsPerSec, options.payload ?? 'flat', options.streamSurface ?? 'chat')
      : null;
    if (stream) started.push(stream);
    return {
      upstreams,
      stream,
      redis,
      setLatencyMs: async (ms) => void (await Promise.all(upstreams.map((u) => u.configure({ latencyMs: ms })))),
      inflight: async () => (await Promise.all(upstreams.map((u) => u.stats()))).reduce((sum, s) => sum + s.inflight, 0),
      resetStats: async () => void (await Promise.all(upstreams.map((u) => u.reset()))),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

async function startStreamUpstream(eventsPerSec: number, payload: Payload, surface: StreamSurface): Promise<StreamUpstream> {
  const entry = fileURLToPath(new URL('./stream-upstream.ts', import.meta.url));
  const args = ['--events-per-sec', String(eventsPerSec), '--payload', payload, '--surface', surface];
  const proc = await spawnTsProcess<{ port: number }>(entry, args);
  const url = `http://127.0.0.1:${proc.ready.port}`;
  return {
    surface,
    node: `127.0.0.1:${proc.ready.port}`,
    port: proc.ready.port,
    url,
    pid: proc.pid,
    inflight: async () => ((await (await fetch(`${url}/__stream/stats`)).json()) as { inflight: number }).inflight,
    stop: () => proc.stop(),
  };
}
