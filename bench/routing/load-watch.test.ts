import { expect, test } from 'vitest';
import { countAvoidableLoads, type EngineSample } from './load-watch.ts';

const engine = (loadedModels: string[], over: Partial<EngineSample> = {}): EngineSample => ({
  modelLoads: 0,
  loading: null,
  loadedModels,
  running: 0,
  waiting: 0,
  ...over,
});

test('a load is avoidable when another engine had the model loaded and a free slot just before', () => {
  const free = [engine(['a']), engine(['b'], { running: 1 })];
  const loadsB = [engine([], { modelLoads: 1, loading: 'b' }), engine(['b'], { running: 1 })];
  expect(countAvoidableLoads([free, loadsB], [2, 2])).toBe(1);
});

test('a load while every warm engine is full (or busy loading) is not', () => {
  const full = [engine(['a']), engine(['b'], { running: 2 })];
  const loadsB = [engine([], { modelLoads: 1, loading: 'b' }), engine(['b'], { running: 2 })];
  expect(countAvoidableLoads([full, loadsB], [2, 2])).toBe(0);
  // Nothing new between samples: nothing counted twice.
  expect(countAvoidableLoads([loadsB, loadsB], [2, 2])).toBe(0);
  const queued = [engine(['a']), engine(['b'], { running: 1, waiting: 1 })];
  expect(countAvoidableLoads([queued, loadsB], [2, 2])).toBe(0);
});
