import { expect, test } from 'vitest';
import type { EngineLoadReading } from '@ai-lb/shared';
import { formatEngineLoad, formatEngineLoadTable } from './format-engine-load.ts';

const reading = (node: string, overrides: Partial<EngineLoadReading>): EngineLoadReading => ({
  node,
  running: null,
  waiting: null,
  kvCacheUsage: null,
  loadedModels: null,
  at: 0,
  ...overrides,
});

test('one cell per node: what the engine tells, nothing it does not', () => {
  expect(formatEngineLoad(reading('a', { running: 3, waiting: 1, kvCacheUsage: 0.0731 }))).toBe('run 3  wait 1  kv 7%');
  expect(formatEngineLoad(reading('b', { loadedModels: ['llama3.1:8b', 'qwen2:7b'] }))).toBe('loaded: llama3.1:8b, qwen2:7b');
  expect(formatEngineLoad(reading('c', { loadedModels: [] }))).toBe('loaded: (none)');
  expect(formatEngineLoad(undefined)).toBe('-');
});

test('the table: a reading, why there is none, or a kind without a load endpoint', () => {
  const table = formatEngineLoadTable(
    ['10.0.0.1:8000', '10.0.0.2:11434', '10.0.0.3:9000'],
    { '10.0.0.1:8000': reading('10.0.0.1:8000', { running: 2, waiting: 0 }) },
    [{ node: '10.0.0.2:11434', reason: 'timeout' }],
  );
  expect(table).toBe(
    [
      'NODE            ENGINE LOAD',
      '10.0.0.1:8000   run 2  wait 0',
      '10.0.0.2:11434  unavailable (timeout)',
      '10.0.0.3:9000   not exposed by this kind',
      '',
    ].join('\n'),
  );
});
