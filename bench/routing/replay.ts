/**
 * Replays a workload's trace through the gateway as streaming chat requests and times
 * each one from the client's side: time to the first event (TTFT) and to the end of the
 * stream (end to end). Sessions start at their trace time; the turns of a session follow
 * each other, each carrying the replies received so far, like a chat client.
 */
import { Agent, request } from 'undici';
import type { Session } from './workloads.ts';

export interface RequestSample {
  ok: boolean;
  status: number;
  ttftMs: number;
  e2eMs: number;
  node: string | null;
  /** Seconds since the replay started, when the request ended. */
  endedAtMs: number;
}

interface Message {
  role: string;
  content: string;
}

export async function replayTrace(
  baseUrl: string,
  sessions: readonly Session[],
  options: { timeoutMs: number },
): Promise<{ samples: RequestSample[]; wallMs: number }> {
  const agent = new Agent({ connections: 256, keepAliveTimeout: 10_000 });
  const samples: RequestSample[] = [];
  const started = performance.now();
  try {
    await Promise.all(
      sessions.map(async (session) => {
        await delayUntil(started + session.startMs);
        const messages: Message[] = [];
        for (const [i, turn] of session.turns.entries()) {
          if (i > 0) await new Promise((resolve) => setTimeout(resolve, session.thinkMs));
          if (turn.system !== undefined) messages.push({ role: 'system', content: turn.system });
          messages.push({ role: 'user', content: turn.user });
          const { sample, reply } = await streamChat(
            agent,
            baseUrl,
            { model: session.model, messages, maxTokens: turn.maxTokens },
            started,
            options.timeoutMs,
          );
          samples.push(sample);
          if (!sample.ok) return; // a failed turn ends the conversation, as a user would retry later
          messages.push({ role: 'assistant', content: reply });
        }
      }),
    );
  } finally {
    await agent.close();
  }
  return { samples, wallMs: performance.now() - started };
}

async function streamChat(
  agent: Agent,
  baseUrl: string,
  body: { model: string; messages: Message[]; maxTokens: number },
  replayStart: number,
  timeoutMs: number,
): Promise<{ sample: RequestSample; reply: string }> {
  const sent = performance.now();
  let ttftMs = Number.NaN;
  let reply = '';
  try {
    const res = await request(`${baseUrl}/v1/chat/completions`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: body.model, messages: body.messages, max_tokens: body.maxTokens, stream: true }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const node = typeof res.headers['x-routed-node'] === 'string' ? res.headers['x-routed-node'] : null;
    let buffered = '';
    for await (const chunk of res.body) {
      if (Number.isNaN(ttftMs)) ttftMs = performance.now() - sent;
      buffered += chunk.toString();
      let end = buffered.indexOf('\n\n');
      while (end >= 0) {
        reply += contentOf(buffered.slice(0, end));
        buffered = buffered.slice(end + 2);
        end = buffered.indexOf('\n\n');
      }
    }
    const ended = performance.now();
    const ok = res.statusCode === 200;
    return {
      sample: { ok, status: res.statusCode, ttftMs: ok ? ttftMs : Number.NaN, e2eMs: ended - sent, node, endedAtMs: ended - replayStart },
      reply,
    };
  } catch {
    const ended = performance.now();
    return { sample: { ok: false, status: 0, ttftMs: Number.NaN, e2eMs: ended - sent, node: null, endedAtMs: ended - replayStart }, reply };
  }
}

function contentOf(event: string): string {
  if (!event.startsWith('data: ') || event === 'data: [DONE]') return '';
  try {
    const parsed = JSON.parse(event.slice(6)) as { choices?: { delta?: { content?: string } }[] };
    return parsed.choices?.[0]?.delta?.content ?? '';
  } catch {
    return '';
  }
}

function delayUntil(at: number): Promise<void> {
  const wait = at - performance.now();
  return wait > 0 ? new Promise((resolve) => setTimeout(resolve, wait)) : Promise.resolve();
}
