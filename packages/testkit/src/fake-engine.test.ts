/** The fake engine as a process: what routing relies on is observable through its endpoints. */
import { afterAll, describe, expect, test } from 'vitest';
import { startFakeEngine, type FakeEngineProcess } from './start-fake-engine.ts';

const started: FakeEngineProcess[] = [];
afterAll(async () => {
  await Promise.all(started.map((engine) => engine.stop()));
});

async function engine(options: Parameters<typeof startFakeEngine>[0]): Promise<FakeEngineProcess> {
  const proc = await startFakeEngine(options);
  started.push(proc);
  return proc;
}

function chat(e: FakeEngineProcess, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return fetch(`${e.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const BASE = { models: ['m'], modelLoadMs: 300, slots: 1, decodeTokensPerSec: 200, prefillTokensPerSec: 50_000, kvCacheTokens: 100_000 };

describe('fake engine', () => {
  test('a repeated prompt prefix is served from the prefix cache (counted as cached tokens)', async () => {
    const e = await engine({ kind: 'vllm', ...BASE });
    const system = { role: 'system', content: 'x'.repeat(8000) };
    const first = await (await chat(e, { model: 'm', messages: [system, { role: 'user', content: 'one' }], max_tokens: 2 })).json();
    const second = await (await chat(e, { model: 'm', messages: [system, { role: 'user', content: 'two' }], max_tokens: 2 })).json();
    expect(first.usage.prompt_tokens_details.cached_tokens).toBe(0);
    expect(second.usage.prompt_tokens_details.cached_tokens).toBeGreaterThanOrEqual(1900);
    const stats = await e.stats();
    expect(stats).toMatchObject({ requests: 2, completed: 2 });
    expect(stats.cachedTokens).toBe(second.usage.prompt_tokens_details.cached_tokens);
  });

  test('slots and a FIFO queue, reported on vLLM /metrics; outside requests counted apart', async () => {
    const e = await engine({ kind: 'vllm', ...BASE, decodeTokensPerSec: 20 });
    const a = chat(e, { model: 'm', messages: [{ role: 'user', content: 'a' }], max_tokens: 10 }, { 'x-fake-external': '1' });
    const b = chat(e, { model: 'm', messages: [{ role: 'user', content: 'b' }], max_tokens: 10 });
    await until(async () => {
      const text = await (await fetch(`${e.url}/metrics`)).text();
      return /vllm:num_requests_running\{[^}]*\} 1\n/.test(text) && /vllm:num_requests_waiting\{[^}]*\} 1\n/.test(text);
    }, 'one running, one waiting');
    await Promise.all([(await a).text(), (await b).text()]);
    expect((await e.stats()).external.requests).toBe(1);
  });

  test('stream: role first, tokens, a finish reason, usage, [DONE]', async () => {
    const e = await engine({ kind: 'vllm', ...BASE });
    const res = await chat(e, { model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const events = (await res.text()).split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)));
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('tok '.repeat(5));
    expect(chunks.at(-1).usage.completion_tokens).toBe(5);
  });

  test('Ollama-like: one model at a time; another model is loaded (counted) and shows in /api/ps', async () => {
    const e = await engine({ kind: 'ollama', ...BASE, models: ['a', 'b'], loaded: ['a'], maxLoadedModels: 1 });
    const ps = async () => ((await (await fetch(`${e.url}/api/ps`)).json()) as { models: { name: string }[] }).models.map((m) => m.name);
    expect(await ps()).toEqual(['a']);
    await (await chat(e, { model: 'b', messages: [{ role: 'user', content: 'x' }], max_tokens: 1 })).json();
    expect(await ps()).toEqual(['b']);
    expect((await e.stats()).modelLoads).toBe(1);
    await e.reset();
    expect(await ps()).toEqual(['a']);
  });

  test('an unknown model is a 404 in the OpenAI envelope', async () => {
    const e = await engine({ kind: 'vllm', ...BASE });
    const res = await chat(e, { model: 'nope', messages: [] });
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe('model_not_found');
  });
});
