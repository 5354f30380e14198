/** Probe parsers against recorded real responses (packages/testkit/fixtures). Pure: no I/O but the fixture files. */
import { Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { readFixture, readFixtureText } from '@ai-lb/testkit';
import { parseOpenAiModels } from './openai.ts';
import { parseOllamaModels } from './ollama.ts';
import { parseLlamaCppProps, parseLlamaCppSlots } from './llamacpp.ts';
import { parseLmStudioModels } from './lmstudio.ts';
import { parseSglangModelInfo, parseSglangServerInfo } from './sglang.ts';
import { parsePrometheusSample, parseVllmMetrics } from './vllm.ts';
import { readBoundedBody } from './probe-client.ts';
import { ProbeError, toProbeError } from './probe-error.ts';

function reasonOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof ProbeError ? error.reason : `not a ProbeError: ${String(error)}`;
  }
  return undefined;
}

describe('OpenAI /v1/models', () => {
  test.each([
    ['openai-v1-models.json', ['gpt-4o-mini', 'text-embedding-3-small'], ['system']],
    ['llamacpp-v1-models.json', ['../models/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf'], ['llamacpp']],
    ['vllm-v1-models.json', ['Qwen/Qwen3-0.6B'], ['vllm']],
    ['ollama-v1-models.json', ['llama3:latest', 'codellama:13b'], ['library']],
    [
      'lmstudio-v1-models.json',
      ['qwen2-vl-7b-instruct', 'meta-llama-3.1-8b-instruct', 'text-embedding-nomic-embed-text-v1.5'],
      ['organization_owner'],
    ],
    ['sglang-v1-models.json', ['qwen/qwen2.5-0.5b-instruct'], ['sglang']],
  ])('%s', (fixture, models, ownedBy) => {
    expect(parseOpenAiModels(readFixture(fixture))).toEqual({ models, ownedBy });
  });

  test('an empty list is a node with no models; duplicates collapse', () => {
    expect(parseOpenAiModels({ object: 'list', data: [] })).toEqual({ models: [], ownedBy: [] });
    expect(parseOpenAiModels({ data: [{ id: 'a' }, { id: 'a' }] }).models).toEqual(['a']);
  });

  test.each([[null], [[]], [{ data: 'x' }], [{ data: [{ name: 'no-id' }] }], [{ data: [{ id: '' }] }], [{ models: [] }]])(
    'wrong shape %j is bad_shape',
    (doc) => expect(reasonOf(() => parseOpenAiModels(doc))).toBe('bad_shape'),
  );
});

describe('Ollama', () => {
  test('/api/tags lists model names', () => {
    expect(parseOllamaModels(readFixture('ollama-api-tags.json'))).toEqual(['codellama:13b', 'llama3:latest']);
  });

  test('/api/ps lists loaded models', () => {
    expect(parseOllamaModels(readFixture('ollama-api-ps.json'), '/api/ps')).toEqual(['mistral:latest']);
  });

  test('an entry without a name, or no models array, is bad_shape', () => {
    expect(reasonOf(() => parseOllamaModels({ models: [{ size: 1 }] }))).toBe('bad_shape');
    expect(reasonOf(() => parseOllamaModels({ error: 'Unexpected endpoint' }))).toBe('bad_shape');
  });
});

describe('llama.cpp', () => {
  test('/props gives total_slots and the model path', () => {
    expect(parseLlamaCppProps(readFixture('llamacpp-props.json'))).toEqual({
      totalSlots: 1,
      modelPath: '../models/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf',
    });
  });

  test('older /props without total_slots still identifies llama.cpp; /slots counts the slots', () => {
    const { total_slots: _dropped, ...older } = readFixture<Record<string, unknown>>('llamacpp-props.json');
    expect(parseLlamaCppProps(older).totalSlots).toBeNull();
    expect(parseLlamaCppSlots(readFixture('llamacpp-slots.json'))).toBe(2);
  });

  test('other documents are bad_shape', () => {
    expect(reasonOf(() => parseLlamaCppProps({ model_path: 'x' }))).toBe('bad_shape');
    expect(reasonOf(() => parseLlamaCppSlots([]))).toBe('bad_shape');
    expect(reasonOf(() => parseLlamaCppSlots({ error: 'slots disabled' }))).toBe('bad_shape');
  });
});

describe('LM Studio /api/v0/models', () => {
  test('type and loaded state per model', () => {
    expect(parseLmStudioModels(readFixture('lmstudio-api-v0-models.json'))).toEqual([
      { id: 'qwen2-vl-7b-instruct', type: 'vlm', state: 'not-loaded' },
      { id: 'meta-llama-3.1-8b-instruct', type: 'llm', state: 'loaded' },
      { id: 'text-embedding-nomic-embed-text-v1.5', type: 'embeddings', state: 'not-loaded' },
    ]);
  });

  test('an OpenAI list without state is not LM Studio', () => {
    expect(reasonOf(() => parseLmStudioModels(readFixture('openai-v1-models.json')))).toBe('bad_shape');
  });
});

describe('SGLang', () => {
  test('/get_model_info identifies it; /get_server_info gives max_running_requests', () => {
    expect(parseSglangModelInfo(readFixture('sglang-get-model-info.json'))).toEqual({
      modelPath: 'qwen/qwen2.5-0.5b-instruct',
      isGeneration: true,
    });
    expect(parseSglangServerInfo(readFixture('sglang-get-server-info.json'))).toBe(64);
  });

  test('an unset max_running_requests (null) detects nothing', () => {
    expect(parseSglangServerInfo({ ...readFixture<object>('sglang-get-server-info.json'), max_running_requests: null })).toBeNull();
  });
});

describe('vLLM /metrics', () => {
  test('running and waiting requests from the recorded page', () => {
    expect(parseVllmMetrics(readFixtureText('vllm-metrics.txt'))).toEqual({ running: 3, waiting: 1 });
  });

  test('summed over engines; label values with spaces and braces do not confuse the parser', () => {
    const text = [
      'vllm:num_requests_running{engine="0",model_name="a b}c"} 2',
      'vllm:num_requests_running{engine="1",model_name="q\\"x"} 3.0 1700000000000',
      'vllm:num_requests_waiting 4',
    ].join('\n');
    expect(parseVllmMetrics(text)).toEqual({ running: 5, waiting: 4 });
  });

  test('a Prometheus page of something else is not vLLM', () => {
    expect(reasonOf(() => parseVllmMetrics('# HELP x\nllamacpp:requests_processing 1\n'))).toBe('bad_shape');
    expect(reasonOf(() => parseVllmMetrics('<html>'))).toBe('bad_shape');
  });

  test('sample lines', () => {
    expect(parsePrometheusSample('up 1')).toEqual({ name: 'up', value: 1 });
    expect(parsePrometheusSample('# TYPE up gauge')).toBeNull();
    expect(parsePrometheusSample('x{a="1"')).toBeNull();
    expect(parsePrometheusSample('x{a="1"} NaN')).toBeNull();
  });
});

describe('bounded reads', () => {
  test('a body that never ends is cut off at the cap, and its stream destroyed', async () => {
    let produced = 0;
    const endless = Readable.from(
      (function* () {
        for (;;) {
          produced += 64 * 1024;
          yield Buffer.alloc(64 * 1024, 'x');
        }
      })(),
    );
    await expect(readBoundedBody(endless, 1024 * 1024)).rejects.toMatchObject({ reason: 'too_large' });
    expect(endless.destroyed).toBe(true);
    expect(produced).toBeLessThanOrEqual(2 * 1024 * 1024);
  });

  test('a body under the cap is read whole', async () => {
    await expect(readBoundedBody(Readable.from([Buffer.from('{"a":'), Buffer.from('1}')]), 10)).resolves.toBe('{"a":1}');
  });

  test('network errors map to reasons by code', () => {
    expect(toProbeError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), false).reason).toBe('refused');
    expect(toProbeError(Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), false).reason).toBe('timeout');
    expect(toProbeError(new Error('aborted'), true).reason).toBe('timeout');
    expect(toProbeError({ cause: { code: 'ENOTFOUND' } }, false).reason).toBe('dns');
    expect(toProbeError(new Error('?'), false).reason).toBe('other');
  });
});
