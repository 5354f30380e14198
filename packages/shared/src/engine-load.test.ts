import { describe, expect, it } from 'vitest';
import { engineLoadMaxAgeMs, freshEngineLoads, type EngineLoadReading } from './engine-load.ts';

const at = (node: string, atMs: number): EngineLoadReading => ({
  node,
  running: 1,
  waiting: 0,
  kvCacheUsage: null,
  loadedModels: null,
  at: atMs,
});

describe('freshEngineLoads', () => {
  it('drops readings older than 3 poll intervals and keeps the rest, future ones included', () => {
    const maxAge = engineLoadMaxAgeMs(1000);
    expect(maxAge).toBe(3000);
    const now = 1_000_000;
    const readings = {
      old: at('old', now - 3001),
      edge: at('edge', now - 3000),
      young: at('young', now - 10),
      skew: at('skew', now + 500),
    };
    expect(Object.keys(freshEngineLoads(readings, now, maxAge)).sort()).toEqual(['edge', 'skew', 'young']);
  });
});
