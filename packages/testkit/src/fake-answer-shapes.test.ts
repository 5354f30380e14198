/** `{"answerShape":"engine"}`: non-stream chat answered in vLLM's, llama.cpp's and OpenAI's shapes in turn, read by the official client. */
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startFakeLlmServer, type FakeLlmProcess } from './start-fake-llm-server.ts';

let fake: FakeLlmProcess;

beforeAll(async () => {
  fake = await startFakeLlmServer({ models: ['m'] });
}, 60_000);

afterAll(async () => {
  await fake.stop();
});

test('engine-shaped answers take turns at three engines, with nested usage and a coding answer; flat again when asked', async () => {
  const client = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const ask = () => client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  await fake.configure({ answerShape: 'engine' });
  const answers = [await ask(), await ask(), await ask()];
  const raw = answers.map((a) => a as unknown as Record<string, unknown>);
  expect(raw.filter((a) => 'timings' in a)).toHaveLength(1); // llama.cpp
  expect(raw.filter((a) => 'kv_transfer_params' in a)).toHaveLength(1); // vLLM
  expect(raw.filter((a) => a.service_tier === 'default')).toHaveLength(1); // OpenAI
  for (const answer of answers) {
    expect(answer.usage?.completion_tokens).toBe(412);
    expect(answer.choices[0].message.content).toContain('<0> & done');
    expect(answer.choices[0].finish_reason).toBe('stop');
  }
  await fake.configure({ answerShape: 'flat' });
  expect((await ask()).choices[0].message.content).toBe('Hello from fake');
});
