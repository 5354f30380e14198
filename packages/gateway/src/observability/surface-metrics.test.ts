/**
 * The LLM metrics on every inference surface, not only chat: a real gateway, real fake
 * upstreams (a vLLM kind serving the OpenAI and Anthropic APIs natively, an Ollama kind
 * serving its own), one streamed request per surface, each under a model of its own so the
 * per-model series tell the surfaces apart; streamed and not. Each must be counted under its
 * surface (`route`) with the tokens its upstream's usage reported, in whichever API's shape;
 * each stream with its time to first token and time per output token.
 */
import { describe, expect, test } from 'vitest';
import type { FakeLlmProcess } from '@ai-lb/testkit';
import { fakeKindSurfaces } from '@ai-lb/testkit';
import { nodeState, startGateway, useFakeServers } from '../testing/gateway-harness.ts';
import { metricValue } from '../testing/gateway-processes.ts';

let vllm: FakeLlmProcess;
let ollama: FakeLlmProcess;
useFakeServers(2, (servers) => ([vllm, ollama] = servers), [{ kind: 'vllm' }, { kind: 'ollama' }]);

const messages = [{ role: 'user', content: 'Tell me a story' }];

/** One request per surface: its path, body, and which node serves it. */
const SURFACES = [
  { route: 'chat', path: '/v1/chat/completions', node: 'vllm', body: { messages } },
  { route: 'completions', path: '/v1/completions', node: 'vllm', body: { prompt: 'Once' } },
  { route: 'responses', path: '/v1/responses', node: 'vllm', body: { input: 'Once' } },
  { route: 'messages', path: '/v1/messages', node: 'vllm', body: { messages, max_tokens: 64 } },
  { route: 'ollama_chat', path: '/api/chat', node: 'ollama', body: { messages } },
  { route: 'ollama_generate', path: '/api/generate', node: 'ollama', body: { prompt: 'Once' } },
  // Translated: the Ollama API answered by a node that only speaks OpenAI's.
  { route: 'ollama_chat', path: '/api/chat', node: 'vllm', body: { messages } },
] as const;

/** Each surface twice, streamed and not, each under a model of its own. */
const REQUESTS = SURFACES.flatMap((s, i) => [
  { ...s, stream: true, model: `s${i}-${s.route}` },
  { ...s, stream: false, model: `j${i}-${s.route}` },
]);

/** OpenAI streams carry usage only when asked; every other API's always do. */
function bodyOf(r: (typeof REQUESTS)[number]): Record<string, unknown> {
  const openai = r.route === 'chat' || r.route === 'completions';
  return { model: r.model, ...r.body, stream: r.stream, ...(openai && r.stream ? { stream_options: { include_usage: true } } : {}) };
}

describe('LLM metrics on every surface', () => {
  test('each request is counted under its surface, with its tokens from usage; each stream with TTFT and time per output token', async () => {
    const h = await startGateway('memory');
    const byNode = { vllm: () => vllm, ollama: () => ollama };
    const served = (node: 'vllm' | 'ollama') => REQUESTS.filter((r) => r.node === node).map((r) => r.model);
    await h.putNodes(
      nodeState(vllm.node, served('vllm'), { kind: 'vllm', surfaces: fakeKindSurfaces('vllm') }),
      nodeState(ollama.node, served('ollama'), { kind: 'ollama', surfaces: fakeKindSurfaces('ollama') }),
    );
    for (const r of REQUESTS) {
      const res = await h.post(r.path, bodyOf(r));
      expect(res.status, `${r.path} ${r.model}`).toBe(200);
      expect(res.headers.get('x-routed-node')).toBe(byNode[r.node]().node);
      await res.text();
    }
    const page = await (await h.get('/metrics')).text();
    const wrong: string[] = [];
    for (const r of REQUESTS) {
      const labels = `model="${r.model}",node="${byNode[r.node]().node}"`;
      const positive = (v: number | undefined) => v !== undefined && v > 0;
      const want: Array<[string, (v: number | undefined) => boolean]> = [
        [`ai_lb_requests_total{route="${r.route}",${labels},status="200"}`, (v) => v === 1],
        [`ai_lb_request_duration_seconds_count{route="${r.route}",stream="${r.stream}",${labels}}`, (v) => v === 1],
        [`ai_lb_tokens_total{${labels},type="prompt"}`, positive],
        [`ai_lb_tokens_total{${labels},type="completion"}`, positive],
      ];
      if (r.stream) {
        want.push(
          [`ai_lb_time_to_first_token_seconds_count{${labels}}`, (v) => v === 1],
          [`ai_lb_time_per_output_token_seconds_count{${labels}}`, (v) => v === 1],
        );
      }
      for (const [series, ok] of want) if (!ok(metricValue(page, series))) wrong.push(`${series} = ${metricValue(page, series)}`);
    }
    expect(wrong, 'series missing or wrong').toEqual([]);
  });
});
