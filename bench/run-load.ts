import { runAutocannon } from './autocannon-load.ts';
import type { LoadRequest, LoadResult } from './load-result.ts';
import { runWrk, wrkInstalled } from './wrk-load.ts';

export type LoadGenerator = 'wrk' | 'autocannon';

/** wrk when it is on the PATH (cheaper, µs resolution), else autocannon. */
export function pickLoadGenerator(preferred?: LoadGenerator): LoadGenerator {
  if (preferred) return preferred;
  return wrkInstalled() ? 'wrk' : 'autocannon';
}

export function runLoad(generator: LoadGenerator, request: LoadRequest): Promise<LoadResult> {
  return generator === 'wrk' ? runWrk(request) : runAutocannon(request);
}
