import { describe, expect, test } from 'vitest';
import { ContinuationSplice, continuationBody, isContinuable, MAX_PARTIAL_CHARS, PartialAnswer, resumeTrailer } from './stream-resume.ts';

const chunk = (id: string, delta: Record<string, unknown>, finish: string | null = null, extra: Record<string, unknown> = {}) => ({
  id,
  object: 'chat.completion.chunk',
  created: id === 'first' ? 100 : 200,
  model: id === 'first' ? 'm' : 'm-alias',
  choices: [{ index: 0, delta, finish_reason: finish }],
  ...extra,
});

const request = { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: 10, echo: true };

describe('continuationBody', () => {
  test('vLLM and SGLang get the partial text as a final assistant message with the continuation switch', () => {
    for (const kind of ['vllm', 'sglang'] as const) {
      const body = continuationBody(kind, 'chat', request, { text: 'w1 w2', completionTokens: 2 }, 'node-model');
      expect(body).toEqual({
        model: 'node-model',
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'w1 w2' },
        ],
        stream: true,
        max_tokens: 8,
        continue_final_message: true,
        add_generation_prompt: false,
      });
    }
  });

  test('llama.cpp and Ollama continue a trailing assistant message without a switch; unknown token counts keep max_tokens', () => {
    for (const kind of ['llamacpp', 'ollama'] as const) {
      const body = continuationBody(kind, 'chat', request, { text: 'w1', completionTokens: null }, 'm');
      expect(body?.continue_final_message).toBeUndefined();
      expect(body?.add_generation_prompt).toBeUndefined();
      expect(body?.max_tokens).toBe(10);
      expect((body?.messages as unknown[] | undefined)?.at(-1)).toEqual({ role: 'assistant', content: 'w1' });
    }
  });

  test("a client's own prefill is extended, not followed by a second assistant message", () => {
    const prefilled = {
      ...request,
      continue_final_message: true,
      messages: [...request.messages, { role: 'assistant', content: 'Sure: ' }],
    };
    const body = continuationBody('vllm', 'chat', prefilled, { text: 'w1', completionTokens: null }, 'm');
    expect(body?.messages).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Sure: w1' },
    ]);
  });

  test('completions: prompt plus the partial text, max_tokens reduced by the tokens produced', () => {
    const body = continuationBody(
      'vllm',
      'completions',
      { model: 'm', prompt: 'count:', max_tokens: 5 },
      { text: ' w1', completionTokens: 1 },
      'm',
    );
    expect(body).toEqual({ model: 'm', prompt: 'count: w1', max_tokens: 4 });
  });

  test('not continuable: several choices, a prompt list, no tokens left', () => {
    expect(isContinuable('chat', { ...request, n: 2 }, null)).toBe(false);
    expect(isContinuable('completions', { prompt: ['a', 'b'] }, null)).toBe(false);
    expect(isContinuable('chat', request, 10)).toBe(false);
    expect(isContinuable('chat', request, 9)).toBe(true);
  });
});

describe('PartialAnswer', () => {
  test('collects the text and the identity of the first stream', () => {
    const partial = new PartialAnswer('chat');
    partial.observe(chunk('first', { role: 'assistant', content: '' }));
    partial.observe(chunk('first', { content: 'w1' }));
    partial.observe(chunk('first', { content: ' w2' }));
    expect(partial.text).toBe('w1 w2');
    expect(partial.identity).toEqual({ id: 'first', created: 100, model: 'm' });
    expect(partial.notResumable).toBeNull();
  });

  test('a tool call, a reasoning channel, a second choice, a finished answer or too much text cannot be continued', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [chunk('x', { tool_calls: [{ index: 0, function: { name: 'f' } }] }), 'a tool call'],
      [chunk('x', { reasoning_content: 'hmm' }), 'a reasoning channel'],
      [{ id: 'x', choices: [{ index: 1, delta: { content: 'a' } }] }, 'more than one choice'],
      [chunk('x', {}, 'stop'), 'the answer had finished'],
    ];
    for (const [record, why] of cases) {
      const partial = new PartialAnswer('chat');
      partial.observe(record);
      expect(partial.notResumable).toBe(why);
    }
    const big = new PartialAnswer('completions');
    big.observe({ id: 'x', choices: [{ index: 0, text: 'x'.repeat(MAX_PARTIAL_CHARS + 1) }] });
    expect(big.notResumable).toContain('characters');
    expect(big.text).toBe('');
  });
});

describe('ContinuationSplice', () => {
  test("takes the first stream's identity, drops the role opener, sums usage and names the nodes at the end", () => {
    const partial = new PartialAnswer('chat');
    partial.observe(chunk('first', { role: 'assistant', content: '' }, null, { usage: { prompt_tokens: 3, completion_tokens: 0 } }));
    partial.observe(chunk('first', { content: 'w1' }, null, { usage: { prompt_tokens: 3, completion_tokens: 1 } }));
    partial.beginSegment();
    const splice = new ContinuationSplice(partial, resumeTrailer('b:1', ['a:1']));
    const feed = (record: Record<string, unknown>) => {
      partial.observe(record);
      return splice.push(record);
    };
    expect(feed(chunk('second', { role: 'assistant', content: '' }))).toBe('');
    const content = feed(chunk('second', { role: 'assistant', content: ' w2' }));
    expect(JSON.parse(content.slice(6))).toEqual({
      id: 'first',
      object: 'chat.completion.chunk',
      created: 100,
      model: 'm',
      choices: [{ index: 0, delta: { content: ' w2' }, finish_reason: null }],
    });
    const usage = feed({ id: 'second', choices: [], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } });
    expect(JSON.parse(usage.slice(6)).usage).toEqual({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
    expect(splice.usage).toEqual({ promptTokens: 3, completionTokens: 2 });
    expect(splice.finish()).toBe(': ai-lb resumed on b:1 after a:1\n\ndata: [DONE]\n\n');
  });

  test('a first stream without usage counts its content events', () => {
    const partial = new PartialAnswer('chat');
    partial.observe(chunk('first', { content: 'w1' }));
    partial.observe(chunk('first', { content: ' w2' }));
    partial.beginSegment();
    expect(partial.reportedCompletionTokens()).toBeNull();
    const splice = new ContinuationSplice(partial, resumeTrailer('b:1', ['a:1']));
    const out = splice.push({ id: 'second', choices: [], usage: { prompt_tokens: 9, completion_tokens: 4 } });
    expect(JSON.parse(out.slice(6)).usage).toEqual({ prompt_tokens: 9, completion_tokens: 6, total_tokens: 15 });
  });
});
