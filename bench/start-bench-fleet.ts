/**
 * The bench's own upstreams (fake LLM servers, each its own process) and, when a target
 * needs it, its own redis-server. Every target forwards to these same upstreams, and their
 * latency is switched at run time (/__fake/config), so all targets meet identical upstreams.
 */
import { startFakeLlmServer, startRedis, type FakeLlmProcess, type RedisServer } from '@ai-lb/testkit';

/** The model the load asks for, and the fake server's model that streams two chunks then stalls. */
export const BENCH_MODEL = 'bench-model';
export const HELD_STREAM_MODEL = 'fault-stall-stream';

export interface BenchFleet {
  upstreams: FakeLlmProcess[];
  redis: RedisServer | null;
  /** Delay every upstream applies before answering (the added-latency phase uses 50 ms). */
  setLatencyMs(ms: number): Promise<void>;
  /** Requests the upstreams hold open right now. */
  inflight(): Promise<number>;
  /** Clears the upstreams' per-request records (they grow with every request). */
  resetStats(): Promise<void>;
  stop(): Promise<void>;
}

export async function startBenchFleet(options: { upstreams: number; redis: boolean }): Promise<BenchFleet> {
  const started: Array<{ stop(): Promise<void> }> = [];
  const stopAll = async () => {
    await Promise.allSettled(started.reverse().map((p) => p.stop()));
  };
  try {
    const upstreams: FakeLlmProcess[] = [];
    for (let i = 0; i < options.upstreams; i++) {
      const upstream = await startFakeLlmServer({ models: [BENCH_MODEL, HELD_STREAM_MODEL] });
      started.push(upstream);
      upstreams.push(upstream);
    }
    const redis = options.redis ? await startRedis() : null;
    if (redis) started.push(redis);
    return {
      upstreams,
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
