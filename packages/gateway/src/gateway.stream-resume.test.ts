import OpenAI from 'openai';
import { describe, expect, test } from 'vitest';
import type { NodeState } from '@ai-lb/shared';
import type { FakeLlmProcess } from '@ai-lb/testkit';
import { eventually, nodeState, sseData, startGateway, STORE_KINDS, type Harness, useFakeServers } from './testing/gateway-harness.ts';

let v1: FakeLlmProcess;
let v2: FakeLlmProcess;
let lm: FakeLlmProcess;
let ll: FakeLlmProcess;
let ol: FakeLlmProcess;

useFakeServers(5, (servers) => ([v1, v2, lm, ll, ol] = servers), [
  { kind: 'vllm' },
  { kind: 'vllm' },
  { kind: 'lmstudio' },
  { kind: 'llamacpp' },
  { kind: 'ollama' },
]);

const MODEL = 'words-10';
const UNCUT = 'w1 w2 w3 w4 w5 w6 w7 w8 w9 w10';
const MESSAGES = [{ role: 'user' as const, content: 'count' }];

/** The first attempt goes to v1 (the node that breaks), whatever the strategy's tie-breaks. */
function env(extra: Record<string, string> = {}): Record<string, string> {
  return { NODE_PRIORITY: `${v1.node}=0`, REQUEST_TIMEOUT_SECS: '2', STREAM_IDLE_TIMEOUT_SECS: '0.5', ...extra };
}

function node(server: FakeLlmProcess, kind: NodeState['kind']): NodeState {
  return nodeState(server.node, [MODEL], { kind, surfaces: ['chat_completions', 'completions'] });
}

function client(h: Harness, headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'not-needed', maxRetries: 0, defaultHeaders: headers });
}

interface Chunk {
  id: string;
  model: string;
  created: number;
  choices: Array<{ delta?: { role?: string; content?: string | null }; text?: string; finish_reason?: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

/** The whole stream through the official SDK: its chunks, and the text they carry. */
async function sdkStream(h: Harness, headers: Record<string, string> = {}, streamOptions: Record<string, unknown> = {}) {
  const stream = await client(h, headers).chat.completions.create({
    model: MODEL,
    messages: MESSAGES,
    stream: true,
    stream_options: { include_usage: true, ...streamOptions } as OpenAI.ChatCompletionStreamOptions,
  });
  const chunks: Chunk[] = [];
  for await (const chunk of stream) chunks.push(chunk as unknown as Chunk);
  return { chunks, text: chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('') };
}

/** The raw stream (comments included). */
async function rawStream(
  h: Harness,
  path = '/v1/chat/completions',
  body: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  const payload = path.endsWith('/completions') && !path.includes('chat') ? { prompt: 'count:' } : { messages: MESSAGES };
  const res = await h.post(path, { model: MODEL, stream: true, ...payload, ...body }, { headers });
  const text = await res.text();
  const data = sseData(text).filter((d) => d !== '' && d !== '[DONE]');
  const records = data.map((d) => JSON.parse(d) as Chunk & { error?: { message: string } });
  const content = records.map((r) => r.choices?.[0]?.delta?.content ?? r.choices?.[0]?.text ?? '').join('');
  return { res, text, records, content };
}

async function resumes(h: Harness, result: string): Promise<number> {
  const metrics = await (await h.get('/metrics')).text();
  const line = metrics.split('\n').find((l) => l.startsWith(`ai_lb_stream_resumes_total{result="${result}"}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe.each(STORE_KINDS)('mid-stream continuation with the %s store', (kind) => {
  test('a stream cut after 3 words continues on another vLLM node: the uncut text, one id, one role chunk, usage summed, both nodes named', async () => {
    const h = await startGateway(kind, env({ STREAM_RESUME: 'true' }));
    await v1.configure({ failMode: 'fault-cut-after-3' });
    await h.putNodes(node(v1, 'vllm'), node(v2, 'vllm'));

    const uncut = await sdkStream({ url: v2.url } as Harness, {}, { continuous_usage_stats: true });
    expect(uncut.text).toBe(UNCUT);
    const { chunks, text } = await sdkStream(h, {}, { continuous_usage_stats: true });
    expect(text).toBe(uncut.text);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(new Set(chunks.map((c) => c.model))).toEqual(new Set([MODEL]));
    expect(chunks.filter((c) => c.choices[0]?.delta?.role !== undefined)).toHaveLength(1);
    expect(chunks.filter((c) => c.choices[0]?.finish_reason === 'stop')).toHaveLength(1);
    // Both nodes reported usage (continuous usage stats): the completion tokens add up to the uncut answer's.
    const usage = chunks.at(-1)?.usage;
    expect(usage).toEqual(uncut.chunks.at(-1)?.usage);
    expect(usage?.completion_tokens).toBe(10);

    // Without per-chunk usage the first node's share is its content events; the comment names both nodes.
    const raw = await rawStream(h, '/v1/chat/completions', { stream_options: { include_usage: true } });
    expect(raw.res.status).toBe(200);
    expect(raw.res.headers.get('x-routed-node')).toBe(v1.node);
    expect(raw.content).toBe(UNCUT);
    expect(raw.text).toContain(`: ai-lb resumed on ${v2.node} after ${v1.node}\n\n`);
    expect(raw.text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(raw.records.some((r) => r.error !== undefined)).toBe(false);
    expect(raw.records.at(-1)?.usage?.completion_tokens).toBe(10);
    expect((await v1.stats()).requests).toBe(2);
    expect((await v2.stats()).requests).toBe(3);
    expect(await resumes(h, 'completed')).toBe(2);
    // The node that broke counts a failure for its circuit, as without continuation.
    const failures = (await (await h.get('/metrics')).text())
      .split('\n')
      .find((l) => l.startsWith('ai_lb_upstream_failures_total') && l.includes(v1.node));
    expect(failures).toBeDefined();
  });

  test('a stalled stream (STREAM_IDLE_TIMEOUT_SECS) continues on another node', async () => {
    const h = await startGateway(kind, env({ STREAM_RESUME: 'true' }));
    await v1.configure({ failMode: 'fault-stall-after-4' });
    await h.putNodes(node(v1, 'vllm'), node(v2, 'vllm'));
    const { chunks, text } = await sdkStream(h);
    expect(text).toBe(UNCUT);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    await eventually(async () => (await v1.stats()).inflight === 0);
  });

  test('an error event from the upstream mid-stream is held back and the answer continues', async () => {
    const h = await startGateway(kind, env({ STREAM_RESUME: 'true' }));
    await v1.configure({ failMode: 'fault-error-after-2' });
    await h.putNodes(node(v1, 'vllm'), node(v2, 'vllm'));
    const raw = await rawStream(h);
    expect(raw.content).toBe(UNCUT);
    expect(raw.text).not.toContain('fake generation failed');
  });

  test('continues onto llama.cpp and Ollama nodes (a trailing assistant message is their prefill)', async () => {
    const h = await startGateway(kind, env({ STREAM_RESUME: 'true' }));
    await v1.configure({ failMode: 'fault-cut-after-5' });
    await h.putNodes(node(v1, 'vllm'), node(ll, 'llamacpp'));
    expect((await sdkStream(h)).text).toBe(UNCUT);
    const h2 = await startGateway(kind, env({ STREAM_RESUME: 'true' }));
    await h2.putNodes(node(v1, 'vllm'), node(ol, 'ollama'));
    const raw = await rawStream(h2);
    expect(raw.content).toBe(UNCUT);
    expect(raw.text).toContain(`: ai-lb resumed on ${ol.node} after ${v1.node}`);
  });

  test('/v1/completions continues with the prompt plus the partial text', async () => {
    const h = await startGateway(kind, env({ STREAM_RESUME: 'true' }));
    await v1.configure({ failMode: 'fault-cut-after-4' });
    await h.putNodes(node(v1, 'vllm'), node(v2, 'vllm'));
    const stream = await client(h).completions.create({ model: MODEL, prompt: 'count:', stream: true, max_tokens: 50 });
    const ids = new Set<string>();
    let text = '';
    for await (const chunk of stream) {
      ids.add(chunk.id);
      text += chunk.choices[0]?.text ?? '';
    }
    expect(text).toBe(UNCUT);
    expect(ids.size).toBe(1);
  });

  test('resume off (the default): the break ends the stream with an SSE error event, as before', async () => {
    const h = await startGateway(kind, env());
    await v1.configure({ failMode: 'fault-cut-after-3' });
    await h.putNodes(node(v1, 'vllm'), node(v2, 'vllm'));
    const raw = await rawStream(h);
    expect(raw.res.status).toBe(200);
    expect(raw.records.at(-1)?.error?.message).toContain('upstream stream failed');
    expect(raw.content).toBe('w1 w2 w3');
    expect((await v2.stats()).requests).toBe(0);
    // Nothing was tried, so nothing is counted (the counter exists, with no samples).
    const metrics = await (await h.get('/metrics')).text();
    expect(metrics).toContain('# TYPE ai_lb_stream_resumes_total counter');
    expect(metrics).not.toMatch(/^ai_lb_stream_resumes_total\{/m);
  });

  test('x-ai-lb-stream-resume overrides STREAM_RESUME both ways; another value is a 400', async () => {
    const off = await startGateway(kind, env());
    await v1.configure({ failMode: 'fault-cut-after-3' });
    await off.putNodes(node(v1, 'vllm'), node(v2, 'vllm'));
    expect((await sdkStream(off, { 'x-ai-lb-stream-resume': 'true' })).text).toBe(UNCUT);

    const on = await startGateway(kind, env({ STREAM_RESUME: 'true' }));
    await on.putNodes(node(v1, 'vllm'), node(v2, 'vllm'));
    const raw = await rawStream(on, '/v1/chat/completions', {}, { 'x-ai-lb-stream-resume': 'false' });
    expect(raw.records.at(-1)?.error?.message).toContain('upstream stream failed');
    expect(raw.content).toBe('w1 w2 w3');
    expect((await v2.stats()).requests).toBe(1);

    const bad = await rawStream(on, '/v1/chat/completions', {}, { 'x-ai-lb-stream-resume': 'maybe' });
    expect(bad.res.status).toBe(400);
    expect(JSON.parse(bad.text).error.param).toBe('x-ai-lb-stream-resume');
  });

  test('only a kind that continues answers is resumed onto: an LM Studio node gets nothing, the client the error event', async () => {
    const h = await startGateway(kind, env({ STREAM_RESUME: 'true' }));
    await v1.configure({ failMode: 'fault-cut-after-3' });
    await h.putNodes(node(v1, 'vllm'), node(lm, 'lmstudio'));
    const raw = await rawStream(h);
    expect(raw.records.at(-1)?.error?.message).toContain('upstream stream failed');
    expect(raw.content).toBe('w1 w2 w3');
    expect((await lm.stats()).requests).toBe(0);
    expect(await resumes(h, 'no_node')).toBe(1);
  });

  test('with no other node the break ends in the SSE error event', async () => {
    const h = await startGateway(kind, env({ STREAM_RESUME: 'true' }));
    await v1.configure({ failMode: 'fault-cut-after-3' });
    await h.putNodes(node(v1, 'vllm'));
    const raw = await rawStream(h);
    expect(raw.records.at(-1)?.error?.message).toContain('upstream stream failed');
    expect(raw.content).toBe('w1 w2 w3');
    expect((await v1.stats()).requests).toBe(1);
    expect(await resumes(h, 'no_node')).toBe(1);
    await eventually(async () => (await h.store.getInflight([v1.node]))[v1.node] === 0);
  });

  test('a continuation that breaks too continues again, within MAX_RETRIES', async () => {
    const h = await startGateway(kind, env({ STREAM_RESUME: 'true', NODE_PRIORITY: `${v1.node}=0,${v2.node}=1` }));
    await v1.configure({ failMode: 'fault-cut-after-3' });
    await v2.configure({ failMode: 'fault-cut-after-2' });
    await h.putNodes(node(v1, 'vllm'), node(v2, 'vllm'), node(ll, 'llamacpp'));
    const raw = await rawStream(h);
    expect(raw.content).toBe(UNCUT);
    expect(raw.text).toContain(`: ai-lb resumed on ${ll.node} after ${v1.node}, ${v2.node}`);
    expect(new Set(raw.records.map((r) => r.id)).size).toBe(1);

    const once = await startGateway(kind, env({ STREAM_RESUME: 'true', MAX_RETRIES: '1', NODE_PRIORITY: `${v1.node}=0,${v2.node}=1` }));
    await once.putNodes(node(v1, 'vllm'), node(v2, 'vllm'), node(ll, 'llamacpp'));
    const bounded = await rawStream(once);
    expect(bounded.records.at(-1)?.error).toBeDefined();
    expect(bounded.content).toBe('w1 w2 w3 w4 w5');
  });
});
