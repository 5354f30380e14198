/**
 * One upstream request. fetchWhole against a real fake LLM server (its own process, real sockets): the body read
 * whole, the size limit, a verdict from the head, and an abort from the attempt's switch —
 * each ending with the upstream request released, never left hanging.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Pool } from 'undici';
import { startFakeLlmServer, type FakeLlmProcess } from '@ai-lb/testkit';
import { AbortSwitch } from '../http/exchange.ts';
import { AttemptError } from './attempt-error.ts';
import { AttemptAbort, answerHeaders, checkJsonAnswer, fetchWhole, usageOfAnswer, type FetchWholeOptions } from './upstream-request.ts';

let server: FakeLlmProcess;
let pool: Pool;

beforeAll(async () => {
  server = await startFakeLlmServer({ models: ['m1', 'fault-stall-stream'] });
  pool = new Pool(server.url, { headersTimeout: 0, bodyTimeout: 0 });
});

afterAll(async () => {
  await pool?.destroy();
  await server?.stop();
});

function send(model: string, onHead: FetchWholeOptions['onHead'], abort = new AttemptAbort(new AbortSwitch())) {
  const body = Buffer.from(JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }));
  return fetchWhole(
    pool,
    { path: '/v1/chat/completions', body, headers: { 'content-type': 'application/json' }, onHead, budget: null },
    abort,
  );
}

/** The fake server counts requests in flight; a released request leaves within this bound. */
async function expectNothingInflight(): Promise<void> {
  const until = Date.now() + 3000;
  for (let i = 0; i < 60 && Date.now() < until; i++) {
    if ((await server.stats()).inflight === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect((await server.stats()).inflight).toBe(0);
}

describe('answerHeaders', () => {
  test("reads content-type and retry-after as undici's parseHeaders does, the first of each, in any case", () => {
    const raw = [
      ['Date', 'Tue, 01 Dec 2026 10:00:00 GMT'],
      ['Content-Type', 'application/json; charset=utf-8'],
      ['X-Request-Id', 'r1'],
      ['RETRY-AFTER', '3'],
      ['content-type', 'text/html'],
      ['Retry-After', '9'],
      ['x-caf\u00e9', 'v'],
    ].flatMap(([name, value]) => [Buffer.from(name, 'latin1'), Buffer.from(value, 'latin1')]);
    expect(answerHeaders(raw)).toEqual({ 'content-type': 'application/json; charset=utf-8', 'retry-after': '3' });
    const latin1 = [Buffer.from('content-type'), Buffer.from('text/plain; x=caf\u00e9', 'latin1')];
    expect(answerHeaders(latin1)).toEqual({ 'content-type': 'text/plain; x=caf\u00e9' });
    expect(answerHeaders([])).toEqual({});
  });
});

describe('fetchWhole', () => {
  test('reads a 200 answer whole, with its status and parsed headers', async () => {
    const heads: number[] = [];
    const res = await send('m1', (status) => {
      heads.push(status);
      return 1 << 20;
    });
    expect(heads).toEqual([200]);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/json/);
    expect(JSON.parse(res.body!.toString()).choices[0].message.role).toBe('assistant');
  });

  test('a body over the limit resolves with body null and frees the upstream request', async () => {
    const res = await send('m1', () => 10);
    expect(res.statusCode).toBe(200);
    expect(res.body).toBeNull();
    await expectNothingInflight();
  });

  test('an Error from onHead fails the request with that error, without reading the body', async () => {
    const verdict = new AttemptError('AI_LB_BAD_RESPONSE', 'not wanted');
    // This answer sends its head and half a body, then goes silent: only a cancel ends it.
    await expect(send('fault-stall-stream', () => verdict)).rejects.toBe(verdict);
    await expectNothingInflight();
  });

  test('the attempt switch aborts a stalled body with its own reason', async () => {
    const abort = new AttemptAbort(new AbortSwitch());
    const pending = send(
      'fault-stall-stream',
      () => {
        abort.arm(200, 'AI_LB_BODY_TIMEOUT', 'body not complete within');
        return 1 << 20;
      },
      abort,
    );
    await expect(pending).rejects.toMatchObject({ code: 'AI_LB_BODY_TIMEOUT', message: 'body not complete within 200 ms' });
    abort.dispose();
    await expectNothingInflight();
  });

  test('a client gone before the request is sent: rejected at once with the client-abort reason', async () => {
    const client = new AbortSwitch();
    client.abort(new AttemptError('AI_LB_CLIENT_ABORT', 'gone'));
    await expect(send('m1', () => 1 << 20, new AttemptAbort(client))).rejects.toMatchObject({ code: 'AI_LB_CLIENT_ABORT' });
  });
});

const check = (text: string) => checkJsonAnswer(Buffer.from(text))?.code ?? null;

test('a JSON object passes; non-objects, truncated bodies and 200-with-error do not', () => {
  expect(check('{"id":"x","choices":[]}')).toBeNull();
  expect(check(' \n{"object":"list","data":[]}\n ')).toBeNull();
  expect(check('{ "error": null, "id": "x" }')).toBeNull();
  expect(check('{"id":"x","error":"late key is not looked at"}')).toBeNull();
  expect(check('')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('   ')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('this is not json')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('<html><body>oops</body></html>')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('{"id":"cut","choices":[')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('[1,2]')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('{"error": {broken}')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('{"error":{"message":"model failed to load"}}')).toBe('AI_LB_ERROR_EVENT');
  expect(checkJsonAnswer(Buffer.from('{ "error" : "out of memory" }'))?.message).toContain('out of memory');
});

test("usageOfAnswer reads the answer's usage without parsing the answer", () => {
  const answer = (usage: string) => Buffer.from(`{"id":"x","choices":[{"message":{"content":"\\"usage\\" {"}}],${usage}}`);
  expect(usageOfAnswer(answer('"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}'))).toEqual({
    promptTokens: 5,
    completionTokens: 3,
  });
  expect(usageOfAnswer(answer('"usage":null'))).toBeNull();
  expect(usageOfAnswer(answer('"usage":{"prompt_tokens":"5"}'))).toBeNull();
  expect(usageOfAnswer(Buffer.from('{"id":"x"}'))).toBeNull();
});

test('usageOfAnswer reads usage with nested details, and the Anthropic, Responses and Ollama shapes', () => {
  const tokens = (promptTokens: number, completionTokens: number) => ({ promptTokens, completionTokens });
  // llama.cpp and OpenAI put details objects inside usage.
  const llamacpp =
    '{"choices":[],"usage":{"completion_tokens":7,"prompt_tokens":9,"total_tokens":16,"prompt_tokens_details":{"cached_tokens":4}}}';
  expect(usageOfAnswer(Buffer.from(llamacpp))).toEqual(tokens(9, 7));
  const anthropic = '{"type":"message","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":5,"output_tokens":3}}';
  expect(usageOfAnswer(Buffer.from(anthropic))).toEqual(tokens(5, 3));
  const responses =
    '{"object":"response","usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":0},"output_tokens":4,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":16}}';
  expect(usageOfAnswer(Buffer.from(responses))).toEqual(tokens(12, 4));
  const withString = '{"usage":{"service_tier":"a}b","prompt_tokens":2,"completion_tokens":1}}';
  expect(usageOfAnswer(Buffer.from(withString))).toEqual(tokens(2, 1));
  // Ollama: no usage object (the word only as a string value), the counts at the top level.
  const ollama =
    '{"model":"llama3.2","message":{"role":"assistant","content":"usage"},"done":true,"total_duration":5,"prompt_eval_count":26,"prompt_eval_duration":1,"eval_count":290,"eval_duration":2}';
  expect(usageOfAnswer(Buffer.from(ollama))).toEqual(tokens(26, 290));
  expect(usageOfAnswer(Buffer.from('{"model":"m","embeddings":[[0.1]],"prompt_eval_count":3}'))).toBeNull();
});

test('usageOfAnswer finds the usage object in one pass: braces and escaped quotes in strings, nesting, its size bound', () => {
  const tokens = (promptTokens: number, completionTokens: number) => ({ promptTokens, completionTokens });
  const tricky = '{"choices":[],"usage":{"note":"a\\"}b\\\\","prompt_tokens":2,"d":{"k":"}{"},"completion_tokens":1}}';
  expect(JSON.parse(tricky).usage.prompt_tokens).toBe(2); // the fixture itself is valid JSON
  expect(usageOfAnswer(Buffer.from(tricky))).toEqual(tokens(2, 1));
  // OpenAI's shape: two nested details objects after the counts.
  const openai =
    '{"choices":[],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"service_tier":"default"}';
  expect(usageOfAnswer(Buffer.from(openai))).toEqual(tokens(19, 10));
  // Cut off inside the object, or longer than any usage object: not read.
  expect(usageOfAnswer(Buffer.from('{"usage":{"prompt_tokens":1,"completion_tokens":1'))).toBeNull();
  const long = `{"usage":{"prompt_tokens":1,"completion_tokens":1,"pad":"${'x'.repeat(5000)}"}}`;
  expect(usageOfAnswer(Buffer.from(long))).toBeNull();
});

test("a hostile answer's usage costs one parse, not one per brace: 200 answers with 3,000 braces in a string, well within a second", () => {
  const hostile = Buffer.from(`{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"note":"${'}'.repeat(3000)}"}}`);
  const started = performance.now();
  for (let i = 0; i < 200; i++) expect(usageOfAnswer(hostile)).toEqual({ promptTokens: 1, completionTokens: 1 });
  // Trying each '}' as the end, as the scan once did, took seconds for these (docs/performance.md).
  expect(performance.now() - started).toBeLessThan(1000);
});
