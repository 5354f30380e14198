/** Load parsers against recorded real output of each engine (packages/testkit/fixtures). Pure. */
import { describe, expect, test } from 'vitest';
import { readFixture, readFixtureText } from '@ai-lb/testkit';
import { ProbeError } from '../probes/probe-error.ts';
import { parseOllamaModels } from '../probes/ollama.ts';
import { parseLmStudioModels } from '../probes/lmstudio.ts';
import { parseVllmLoad } from './vllm-load.ts';
import { parseSglangLoad } from './sglang-load.ts';
import { parseLlamaCppMetricsLoad, parseLlamaCppSlotsLoad } from './llamacpp-load.ts';
import { parseLmStudioV1Loaded } from './lmstudio-load.ts';
import { plausibleFacts, MAX_PLAUSIBLE_REQUESTS } from './plausible-reading.ts';
import { LOAD_POLLERS } from './poll-node-load.ts';

function reasonOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof ProbeError ? error.reason : `not a ProbeError: ${String(error)}`;
  }
  return undefined;
}

describe('vLLM /metrics', () => {
  test.each([
    ['vllm-metrics.txt', { running: 3, waiting: 1, kvCacheUsage: 0.0731 }],
    ['vllm-metrics-v0.txt', { running: 7, waiting: 2, kvCacheUsage: 0.4218 }],
    // Data parallel: queues add up, the cache fill is the engines' mean.
    ['vllm-metrics-two-engines.txt', { running: 30, waiting: 5, kvCacheUsage: 0.7 }],
  ])('%s', (fixture, expected) => {
    const load = parseVllmLoad(readFixtureText(fixture));
    expect(load).toMatchObject({ ...expected, loadedModels: null });
    expect(load.kvCacheUsage).toBeCloseTo(expected.kvCacheUsage, 10);
  });

  test('a page without the queue gauges is bad_shape (another server, or an HTML page)', () => {
    expect(reasonOf(() => parseVllmLoad(readFixtureText('sglang-metrics.txt')))).toBe('bad_shape');
    expect(reasonOf(() => parseVllmLoad('<html><body>It works!</body></html>'))).toBe('bad_shape');
  });
});

describe('SGLang /metrics', () => {
  test('sglang-metrics.txt', () => {
    expect(parseSglangLoad(readFixtureText('sglang-metrics.txt'))).toEqual({
      running: 162,
      waiting: 2826,
      kvCacheUsage: 0.28,
      loadedModels: null,
    });
  });

  test('a vLLM page is not an SGLang one', () => {
    expect(reasonOf(() => parseSglangLoad(readFixtureText('vllm-metrics.txt')))).toBe('bad_shape');
  });
});

describe('llama.cpp', () => {
  test('/metrics (with --metrics): processing, deferred and the cache ratio', () => {
    expect(parseLlamaCppMetricsLoad(readFixtureText('llamacpp-metrics.txt'))).toEqual({
      running: 2,
      waiting: 3,
      kvCacheUsage: 0.31,
      loadedModels: null,
    });
  });

  test('/metrics of a build without kv_cache_usage_ratio: no cache fill, still a reading', () => {
    const text = readFixtureText('llamacpp-metrics.txt').replace(/^llamacpp:kv_cache_usage_ratio .*$/m, '');
    expect(parseLlamaCppMetricsLoad(text)).toMatchObject({ running: 2, waiting: 3, kvCacheUsage: null });
  });

  test('/slots: busy slots are the running requests; the queue is not visible', () => {
    expect(parseLlamaCppSlotsLoad(readFixture('llamacpp-slots.json'))).toEqual({
      running: 1,
      waiting: null,
      kvCacheUsage: null,
      loadedModels: null,
    });
  });

  test('the 501 answer of a server without --metrics is not a load page', () => {
    expect(readFixture<{ error: { code: number } }>('llamacpp-metrics-disabled.json').error.code).toBe(501);
    expect(reasonOf(() => parseLlamaCppSlotsLoad(readFixture('llamacpp-metrics-disabled.json')))).toBe('bad_shape');
  });
});

describe('Ollama /api/ps', () => {
  test.each([
    ['ollama-api-ps.json', ['mistral:latest']],
    ['ollama-api-ps-two-models.json', ['llama3.1:8b', 'nomic-embed-text:latest']],
    ['ollama-api-ps-empty.json', []],
  ])('%s', (fixture, loaded) => {
    expect(parseOllamaModels(readFixture(fixture), '/api/ps')).toEqual(loaded);
  });
});

describe('LM Studio', () => {
  test('/api/v1/models: models with a loaded instance', () => {
    expect(parseLmStudioV1Loaded(readFixture('lmstudio-api-v1-models.json'))).toEqual(['gemma-3-270m-it-qat']);
  });

  test('/api/v0/models (older servers): state "loaded"', () => {
    const loaded = parseLmStudioModels(readFixture('lmstudio-api-v0-models.json')).filter((m) => m.state === 'loaded');
    expect(loaded.map((m) => m.id)).toEqual(['meta-llama-3.1-8b-instruct']);
  });

  test('a v0 document is not a v1 one', () => {
    expect(reasonOf(() => parseLmStudioV1Loaded(readFixture('lmstudio-api-v0-models.json')))).toBe('bad_shape');
  });
});

describe('plausibility: an engine that lies has no reading', () => {
  const ok = { running: 3, waiting: 0, kvCacheUsage: 0.5, loadedModels: null };

  test.each([
    ['negative running', { running: -1 }],
    ['NaN waiting', { waiting: Number.NaN }],
    ['infinite running', { running: Number.POSITIVE_INFINITY }],
    ['absurd queue', { waiting: MAX_PLAUSIBLE_REQUESTS + 1 }],
    ['KV cache over 100 %', { kvCacheUsage: 1.5 }],
    ['negative KV cache', { kvCacheUsage: -0.1 }],
    ['NaN KV cache', { kvCacheUsage: Number.NaN }],
  ])('%s', (_, lie) => {
    expect(reasonOf(() => plausibleFacts({ ...ok, ...lie }, 'n:1'))).toBe('bad_shape');
  });

  test('counts are rounded, float noise above 1 is clamped, duplicate models collapse', () => {
    expect(plausibleFacts({ running: 2.9999999, waiting: 0, kvCacheUsage: 1.0000001, loadedModels: ['a', 'a', 'b'] }, 'n:1')).toEqual({
      running: 3,
      waiting: 0,
      kvCacheUsage: 1,
      loadedModels: ['a', 'b'],
    });
  });

  test('a NaN in a vLLM page sinks the reading, not the parser', () => {
    const text = readFixtureText('vllm-metrics.txt').replace(/^(vllm:num_requests_waiting\{.*\}) 1\.0$/m, '$1 NaN');
    const load = parseVllmLoad(text);
    expect(load.waiting).toBeNaN();
    expect(reasonOf(() => plausibleFacts(load, 'n:1'))).toBe('bad_shape');
  });
});

test('every server kind has a row in the poller table; only the generic OpenAI kind has no load endpoint', () => {
  expect(Object.entries(LOAD_POLLERS).flatMap(([kind, poller]) => (poller === null ? [kind] : []))).toEqual(['openai']);
});
