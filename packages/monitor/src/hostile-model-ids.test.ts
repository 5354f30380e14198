/**
 * Servers that list model ids nobody should route by: CR/LF (header injection), NUL, DEL,
 * C1, a lone surrogate, a 1,000,000-character id, and 100,000 ids. Only valid ids reach
 * the store (non-ASCII ones included), at most MAX_MODELS_PER_NODE of them in the server's
 * order; what was left out is counted by reason and noted as a probe warning.
 */
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { startFakeLlmServer, MODEL_FLOOD_COUNT, type FakeLlmProcess } from '@ai-lb/testkit';
import { MAX_MODELS_PER_NODE, MemoryStateStore } from '@ai-lb/shared';
import { startMonitor, type MonitorHandle } from './start-monitor.ts';
import { metricValue, nodesById, testConfig } from './testing/monitor-test-env.ts';

const HOSTILE = [
  'good',
  'evil\r\nx-injected: 1',
  'uni-模型',
  'nul\u0000',
  'del\u007f',
  'c1\u0085',
  'lone\ud800',
  'x'.repeat(1_000_000),
  'also-good',
];

const fakes: Record<'openai' | 'ollama' | 'lmstudio', FakeLlmProcess> = {} as never;
let flood: FakeLlmProcess;
let monitor: MonitorHandle | undefined;
let store: MemoryStateStore | undefined;

beforeAll(async () => {
  for (const kind of ['openai', 'ollama', 'lmstudio'] as const) fakes[kind] = await startFakeLlmServer({ kind });
  flood = await startFakeLlmServer({ kind: 'model-flood', models: ['first'] });
});

afterAll(async () => {
  await Promise.all([...Object.values(fakes), flood].map((fake) => fake?.stop()));
});

afterEach(async () => {
  await monitor?.stop();
  await store?.close();
  monitor = store = undefined;
});

async function scan(node: string) {
  store = new MemoryStateStore();
  monitor = await startMonitor({ config: testConfig({ SCAN_HOSTS: node }), store, schedule: false, listen: false });
  const report = await monitor.scanOnce();
  return { report, record: (await nodesById(store))[node], metrics: monitor.metrics };
}

test.each(['openai', 'ollama', 'lmstudio'] as const)('%s: invalid ids are dropped and counted, the rest kept in order', async (kind) => {
  const fake = fakes[kind];
  // The first model plays the loaded one (Ollama /api/ps, LM Studio state): make it a bad one.
  await fake.configure({ models: [HOSTILE[1], ...HOSTILE] });
  const { report, record, metrics } = await scan(fake.node);

  expect(report.outcomes).toMatchObject({ node: 1, failed: 0 });
  expect(record).toMatchObject({ kind, healthy: true, models: ['good', 'uni-模型', 'also-good'], loadedModels: [] });
  expect(await metricValue(metrics.modelIdsDropped, { reason: 'control_character' })).toBe(4 + (kind === 'openai' ? 0 : 1));
  expect(await metricValue(metrics.modelIdsDropped, { reason: 'malformed_unicode' })).toBe(1);
  expect(await metricValue(metrics.modelIdsDropped, { reason: 'too_long' })).toBe(1);
  expect(await metricValue(metrics.modelIdsDropped, { reason: 'over_cap' })).toBe(0);
  expect(await metricValue(metrics.probeErrors, { reason: 'models_dropped' })).toBe(1);
  const text = await metrics.registry.metrics();
  expect(text).not.toContain('evil');
  expect(text.length).toBeLessThan(20_000);
});

test(`100,000 ids: the first ${MAX_MODELS_PER_NODE} are kept, the rest counted as over_cap`, async () => {
  const { record, metrics } = await scan(flood.node);
  expect(record.models).toHaveLength(MAX_MODELS_PER_NODE);
  expect(record.models.slice(0, 3)).toEqual(['first', 'flood-0', 'flood-1']);
  expect(record.models.at(-1)).toBe(`flood-${MAX_MODELS_PER_NODE - 2}`);
  expect(await metricValue(metrics.modelIdsDropped, { reason: 'over_cap' })).toBe(MODEL_FLOOD_COUNT + 1 - MAX_MODELS_PER_NODE);
  expect(await metricValue(metrics.probeErrors, { reason: 'models_dropped' })).toBe(1);
});

test('a clean listing drops nothing and warns about nothing', async () => {
  await fakes.openai.configure({ models: ['a', 'uni-模型'] });
  const { record, metrics } = await scan(fakes.openai.node);
  expect(record.models).toEqual(['a', 'uni-模型']);
  expect(await metricValue(metrics.modelIdsDropped)).toBe(0);
  expect(await metricValue(metrics.probeErrors)).toBe(0);
});
