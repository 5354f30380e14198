/** The Ollama translation case by case: generate and embeddings, tool results by name, aggregation, errors. */
import { GatewayError } from '@ai-lb/shared';
import { describe, expect, test } from 'vitest';
import { UpstreamAnswerError } from '../upstream-answer-error.ts';
import { aggregatePs, aggregateTags, lowestVersion, syntheticShow } from './aggregate.ts';
import { isOllamaErrorBody } from './errors.ts';
import {
  dataUrl,
  ollamaChatToChatRequest,
  ollamaEmbeddingsToEmbeddingsRequest,
  ollamaEmbedToEmbeddingsRequest,
  ollamaGenerateToUpstream,
} from './request.ts';
import {
  chatCompletionToOllamaChat,
  completionToOllamaGenerate,
  embeddingsToOllamaEmbed,
  embeddingsToOllamaEmbeddings,
} from './response.ts';
import { OllamaStreamTranslator } from './stream.ts';

const fixedTiming = () => ({ startedAtMs: 1_000, clock: () => 1_250 });
const opts = { acceptsTopK: true };

function badParam(run: () => unknown): string | null | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof GatewayError && error.code === 'invalid_request') return error.param;
    throw error;
  }
  return undefined;
}

describe('/api/chat', () => {
  test('stream is the default; a tool result named by tool_name answers that call', () => {
    const { body, stream } = ollamaChatToChatRequest(
      {
        model: 'llama3',
        messages: [
          { role: 'user', content: 'weather and time?' },
          {
            role: 'assistant',
            content: '',
            tool_calls: [
              { function: { name: 'get_weather', arguments: { city: 'Paris' } } },
              { function: { name: 'get_time', arguments: { tz: 'CET' } } },
            ],
          },
          { role: 'tool', tool_name: 'get_time', content: '10:00' },
          { role: 'tool', tool_name: 'get_weather', content: '21°C' },
        ],
        options: { num_predict: -1, num_ctx: 8192, repeat_penalty: 1.1 },
        keep_alive: '5m',
        think: false,
      },
      opts,
    );
    expect(stream).toBe(true);
    expect(body).toEqual({
      model: 'llama3',
      messages: [
        { role: 'user', content: 'weather and time?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
            { id: 'call_1_1', type: 'function', function: { name: 'get_time', arguments: '{"tz":"CET"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1_1', content: '10:00' },
        { role: 'tool', tool_call_id: 'call_1_0', content: '21°C' },
      ],
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  test('images become data URLs with the type their bytes tell', () => {
    expect(dataUrl('iVBORw0KGgo')).toBe('data:image/png;base64,iVBORw0KGgo');
    expect(dataUrl('/9j/4AAQ')).toBe('data:image/jpeg;base64,/9j/4AAQ');
    expect(dataUrl('data:image/webp;base64,UklG')).toBe('data:image/webp;base64,UklG');
  });

  test.each([
    [{ messages: [] }, 'model'],
    [{ model: 'm', messages: 'hi' }, 'messages'],
    [{ model: 'm', messages: [{ role: 'robot', content: 'x' }] }, 'messages.0.role'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x', images: [1] }] }, 'messages.0.images.0'],
    [{ model: 'm', messages: [], format: 'yaml' }, 'format'],
    [{ model: 'm', messages: [], options: { temperature: 'warm' } }, 'options.temperature'],
    [{ model: 'm', messages: [], stream: 'yes' }, 'stream'],
  ])('bad input %j names %s', (body, param) => {
    expect(badParam(() => ollamaChatToChatRequest(body, opts))).toBe(param);
  });

  test('top_k only where the upstream takes it', () => {
    const { body } = ollamaChatToChatRequest({ model: 'm', messages: [], options: { top_k: 20 } }, { acceptsTopK: false });
    expect(body).not.toHaveProperty('top_k');
  });
});

describe('/api/generate', () => {
  test('a plain prompt goes through the chat template: system and images as a chat turn', () => {
    const { path, body, stream } = ollamaGenerateToUpstream(
      { model: 'm', prompt: 'Describe', system: 'Be brief', images: ['iVBORw0KGgo'], stream: false, format: 'json' },
      opts,
    );
    expect({ path, stream }).toEqual({ path: '/v1/chat/completions', stream: false });
    expect(body).toEqual({
      model: 'm',
      messages: [
        { role: 'system', content: 'Be brief' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Describe' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo' } },
          ],
        },
      ],
      response_format: { type: 'json_object' },
    });
  });

  test('raw prompts and fill-in-the-middle skip the template: /v1/completions', () => {
    expect(ollamaGenerateToUpstream({ model: 'm', prompt: 'def f(', suffix: '\n  return x', options: { num_predict: 32 } }, opts)).toEqual({
      path: '/v1/completions',
      body: { model: 'm', prompt: 'def f(', suffix: '\n  return x', max_tokens: 32, stream: true, stream_options: { include_usage: true } },
      stream: true,
    });
    expect(ollamaGenerateToUpstream({ model: 'm', prompt: '<s>[INST]', raw: true, stream: false }, opts).path).toBe('/v1/completions');
    expect(badParam(() => ollamaGenerateToUpstream({ model: 'm', prompt: 'x', raw: true, images: ['iVBOR'] }, opts))).toBe('images');
  });

  test('the answer, from a chat completion or a text completion', () => {
    const fromChat = completionToOllamaGenerate(
      {
        choices: [{ message: { content: 'Hi', reasoning_content: 'hmm' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 4, completion_tokens: 1 },
      },
      'm',
      fixedTiming(),
    );
    expect(fromChat).toEqual({
      model: 'm',
      created_at: new Date(1_250).toISOString(),
      response: 'Hi',
      thinking: 'hmm',
      done: true,
      done_reason: 'stop',
      total_duration: 250_000_000,
      load_duration: 0,
      prompt_eval_count: 4,
      prompt_eval_duration: 0,
      eval_count: 1,
      eval_duration: 250_000_000,
    });
    expect(completionToOllamaGenerate({ choices: [{ text: 'x = 1', finish_reason: 'length' }] }, 'm', fixedTiming())).toMatchObject({
      response: 'x = 1',
      done_reason: 'length',
    });
  });
});

describe('/api/embed and /api/embeddings', () => {
  test('requests ask for floats; answers come back in index order, base64 decoded', () => {
    expect(ollamaEmbedToEmbeddingsRequest({ model: 'e', input: ['a', 'b'], truncate: true, dimensions: 64 })).toEqual({
      path: '/v1/embeddings',
      body: { model: 'e', input: ['a', 'b'], encoding_format: 'float', dimensions: 64 },
      stream: false,
    });
    expect(ollamaEmbeddingsToEmbeddingsRequest({ model: 'e', prompt: 'a' }).body).toEqual({
      model: 'e',
      input: 'a',
      encoding_format: 'float',
    });
    expect(badParam(() => ollamaEmbedToEmbeddingsRequest({ model: 'e', input: [1] }))).toBe('input');
    const base64 = Buffer.from(new Float32Array([0.5, -1]).buffer).toString('base64');
    const answer = {
      data: [
        { index: 1, embedding: base64 },
        { index: 0, embedding: [0.25, 0.75] },
      ],
      usage: { prompt_tokens: 6 },
    };
    expect(embeddingsToOllamaEmbed(answer, 'e', fixedTiming())).toEqual({
      model: 'e',
      embeddings: [
        [0.25, 0.75],
        [0.5, -1],
      ],
      total_duration: 250_000_000,
      load_duration: 0,
      prompt_eval_count: 6,
    });
    expect(embeddingsToOllamaEmbeddings(answer)).toEqual({ embedding: [0.25, 0.75] });
    expect(() => embeddingsToOllamaEmbed({ object: 'list' }, 'e', fixedTiming())).toThrow(UpstreamAnswerError);
  });
});

describe('answers and streams that cannot be translated', () => {
  test('bad tool arguments are an UpstreamAnswerError; a stream ends with an error line instead', () => {
    const bad = { choices: [{ message: { tool_calls: [{ function: { name: 'f', arguments: 'nope' } }] }, finish_reason: 'tool_calls' }] };
    expect(() => chatCompletionToOllamaChat(bad, 'm', fixedTiming())).toThrow(UpstreamAnswerError);
    const translator = new OllamaStreamTranslator({ model: 'm', mode: 'chat', timing: fixedTiming() });
    translator.push({
      choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'c', function: { name: 'f', arguments: '{"a":' } }] } }],
    });
    translator.push({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] });
    expect(JSON.parse(translator.finish())).toEqual({ error: `the upstream's arguments for tool "f" are not a JSON object` });
  });

  test('a stream cut before finish_reason, or an in-band error, ends with {"error"}', () => {
    const cut = new OllamaStreamTranslator({ model: 'm', mode: 'chat', timing: fixedTiming() });
    expect(JSON.parse(cut.push({ choices: [{ index: 0, delta: { content: 'par' } }] }))).toMatchObject({
      message: { content: 'par' },
      done: false,
    });
    expect(JSON.parse(cut.finish())).toEqual({ error: 'the upstream stream ended before the answer was finished' });
    const failed = new OllamaStreamTranslator({ model: 'm', mode: 'generate', timing: fixedTiming() });
    expect(JSON.parse(failed.push({ error: { message: 'out of memory' } }))).toEqual({ error: 'out of memory' });
    expect(failed.isEnded).toBe(true);
    expect(failed.finish()).toBe('');
  });
});

describe('aggregation', () => {
  const entry = (name: string, modified: string, extra: object = {}) => ({
    name,
    model: name,
    modified_at: modified,
    size: 1,
    digest: 'd',
    details: { parent_model: '', format: 'gguf', family: 'llama', families: null, parameter_size: '8B', quantization_level: 'Q4_0' },
    ...extra,
  });

  test('/api/tags: Ollama entries first and de-duplicated, translated models by id, newest first', () => {
    const { models } = aggregateTags([
      { modelIds: ['llama3:latest', 'qwen2.5-7b-instruct'], seenAtMs: Date.parse('2024-01-01T00:00:00Z') },
      { entries: [entry('llama3:latest', '2024-06-01T00:00:00Z'), entry('mistral:latest', '2024-07-01T00:00:00Z')] },
      { entries: [entry('llama3:latest', '2024-05-01T00:00:00Z', { size: 999 }), { nonsense: true }] },
    ]);
    expect(models.map((m) => m.name)).toEqual(['mistral:latest', 'llama3:latest', 'qwen2.5-7b-instruct']);
    expect(models[1]!.size).toBe(1);
    expect(models[2]).toEqual({
      name: 'qwen2.5-7b-instruct',
      model: 'qwen2.5-7b-instruct',
      modified_at: '2024-01-01T00:00:00.000Z',
      size: 0,
      digest: expect.stringMatching(/^[0-9a-f]{64}$/),
      details: { parent_model: '', format: '', family: '', families: null, parameter_size: '', quantization_level: '' },
    });
  });

  test('/api/ps de-duplicates by name; /api/version is the lowest; /api/show for a translated model', () => {
    expect(aggregatePs([[entry('a', 'x', { expires_at: 'e1' })], [entry('a', 'y'), entry('b', 'z')]]).models.map((m) => m.name)).toEqual([
      'a',
      'b',
    ]);
    expect(lowestVersion(['0.12.3', '0.6.8', 'v0.11.0', 'dev'])).toBe('0.6.8');
    expect(lowestVersion(['0.12.10', '0.12.9-rc1'])).toBe('0.12.9-rc1');
    expect(lowestVersion(['unknown'])).toBeNull();
    expect(syntheticShow('qwen', 0)).toMatchObject({ capabilities: ['completion'], details: { format: '' } });
  });

  test('an upstream body that already is Ollama’s is recognised', () => {
    expect(isOllamaErrorBody({ error: 'x' })).toBe(true);
    expect(isOllamaErrorBody({ error: { message: 'x' } })).toBe(false);
  });
});
