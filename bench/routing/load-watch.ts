/**
 * Which model loads could routing have avoided? While a trace replays, the engines' state is
 * sampled every SAMPLE_MS; a load that starts on one engine while another engine of the
 * workload had the model loaded and a free slot (as of the sample before) is avoidable.
 * Warm first allows a load only when every warm node is full, so this counts its mistakes,
 * apart from the loads a fleet short of warm slots needs.
 */
import type { FakeEngineStats } from '@ai-lb/testkit';

export const SAMPLE_MS = 25;

export interface EngineSample {
  modelLoads: number;
  loading: string | null;
  loadedModels: string[];
  running: number;
  waiting: number;
}

/** Avoidable loads between consecutive samples of every engine (`slots` per engine, same order). */
export function countAvoidableLoads(samples: readonly (readonly EngineSample[])[], slots: readonly number[]): number {
  let avoidable = 0;
  for (let t = 1; t < samples.length; t++) {
    const before = samples[t - 1];
    for (const [i, engine] of samples[t].entries()) {
      const model = engine.loading;
      if (engine.modelLoads <= before[i].modelLoads || model === null) continue;
      const warmWithRoom = before.some(
        (other, j) =>
          j !== i && other.loadedModels.includes(model) && other.loading === null && other.waiting === 0 && other.running < slots[j],
      );
      if (warmWithRoom) avoidable += engine.modelLoads - before[i].modelLoads;
    }
  }
  return avoidable;
}

/** Samples the engines until stopped; bounded by the replay it runs beside. */
export function watchLoads(stats: readonly (() => Promise<FakeEngineStats>)[]): { stop(): Promise<EngineSample[][]> } {
  const samples: EngineSample[][] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const round = await Promise.all(stats.map((read) => read()));
      samples.push(
        round.map(({ modelLoads, loading, loadedModels, running, waiting }) => ({ modelLoads, loading, loadedModels, running, waiting })),
      );
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return samples;
    },
  };
}
