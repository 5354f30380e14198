/**
 * A deterministic answer that a continuation can finish the way a greedy-decoding engine
 * would: the answer is the words "w1 w2 … wN" (N from the model `words-<N>`, else 12), one
 * word per stream chunk, and a request whose text already ends with "w1 … wk" gets the rest,
 * " w(k+1) … wN". So an answer cut after k words and continued elsewhere stitches to exactly
 * the uncut answer — when the server continues the partial text. Which servers do is modelled
 * on the real kinds:
 * - vllm, sglang: a final assistant message is continued only with `continue_final_message:
 *   true`, and that together with `add_generation_prompt` (true by default) is a 400, as vLLM
 *   answers; without the switch the assistant message is history and a new answer begins;
 * - llamacpp, ollama: a trailing assistant message is continued (prefill);
 * - openai, lmstudio: a new answer begins after it (no prefill);
 * - /v1/completions: every kind continues the prompt's text.
 *
 * Faults by model or failMode: fault-cut-after-<k> (k words, then the socket is destroyed),
 * fault-stall-after-<k> (k words, then silence), fault-error-after-<k> (k words, then an
 * in-band error event and the end of the stream).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FakeServerStats } from './fake-llm-server.ts';
import type { FakeKind } from './fake-kinds.ts';

type Json = Record<string, unknown>;

const DEFAULT_WORDS = 12;
const WORDS_MODEL = /^words-(\d{1,4})$/;
const BREAK_FAULT = /^fault-(cut|stall|error)-after-(\d{1,4})$/;
/** "w1 w2 … wk" at the end of a text: how far an answer already went. */
const ANSWER_TAIL = /(?<!\w)(w1(?: w\d+)*)$/;

export interface WordsRequest {
  req: IncomingMessage;
  res: ServerResponse;
  kind: FakeKind;
  surface: 'chat' | 'completions';
  body: Json;
  /** The request's model, and the fault played (the model, or failMode's). */
  model: string;
  fault: string;
  stats: FakeServerStats;
}

/** Whether this request is answered with words: a `words-<N>` model, or a break fault. */
export function isWordsRequest(fault: string, model: string): boolean {
  return WORDS_MODEL.test(model) || BREAK_FAULT.test(fault);
}

export async function answerWords(request: WordsRequest): Promise<void> {
  const { res, body, model, surface } = request;
  const total = Number(WORDS_MODEL.exec(model)?.[1] ?? DEFAULT_WORDS);
  const start = startOf(request);
  if (typeof start === 'string') return json(res, 400, { object: 'error', message: start, type: 'BadRequestError', code: 400 });
  const pieces: string[] = [];
  for (let i = start + 1; i <= total; i++) pieces.push(i === 1 ? 'w1' : ` w${i}`);
  const promptTokens = promptWords(body);
  const id = `${surface === 'chat' ? 'chatcmpl' : 'cmpl'}-${process.pid}-${request.stats.requests}`;
  const created = Math.floor(Date.now() / 1000);
  if (body.stream !== true) {
    const text = pieces.join('');
    const choice = surface === 'chat' ? { message: { role: 'assistant', content: text } } : { text, logprobs: null };
    const usage = { prompt_tokens: promptTokens, completion_tokens: pieces.length, total_tokens: promptTokens + pieces.length };
    return json(res, 200, {
      id,
      object: surface === 'chat' ? 'chat.completion' : 'text_completion',
      created,
      model,
      choices: [{ index: 0, ...choice, finish_reason: 'stop' }],
      usage,
    });
  }
  await streamWords(request, pieces, { id, created, promptTokens });
}

async function streamWords(request: WordsRequest, pieces: string[], meta: { id: string; created: number; promptTokens: number }) {
  const { req, res, body, model, surface } = request;
  const options = (body.stream_options ?? {}) as { include_usage?: unknown; continuous_usage_stats?: unknown };
  const broken = BREAK_FAULT.exec(request.fault);
  const breakAfter = broken === null ? Number.POSITIVE_INFINITY : Number(broken[2]);
  const usage = (completion: number) => ({
    prompt_tokens: meta.promptTokens,
    completion_tokens: completion,
    total_tokens: meta.promptTokens + completion,
  });
  const event = (choice: Json, completion: number | null) => {
    const record: Json = {
      id: meta.id,
      object: surface === 'chat' ? 'chat.completion.chunk' : 'text_completion',
      created: meta.created,
      model,
      choices: [{ index: 0, ...choice }],
    };
    if (completion !== null && options.continuous_usage_stats === true) record.usage = usage(completion);
    return `data: ${JSON.stringify(record)}\n\n`;
  };
  const content = (text: string) => (surface === 'chat' ? { delta: { content: text } } : { text, logprobs: null });
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  if (surface === 'chat') res.write(event({ delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }, 0));
  for (let i = 0; i < pieces.length; i++) {
    if (i === breakAfter) return breakStream(broken![1], req, res);
    res.write(event({ ...content(pieces[i]), finish_reason: null }, i + 1));
  }
  res.write(event({ ...content(''), finish_reason: 'stop' }, pieces.length));
  if (options.include_usage === true) {
    const object = surface === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    res.write(
      `data: ${JSON.stringify({ id: meta.id, object, created: meta.created, model, choices: [], usage: usage(pieces.length) })}\n\n`,
    );
  }
  res.end('data: [DONE]\n\n');
}

async function breakStream(how: string, req: IncomingMessage, res: ServerResponse) {
  if (how === 'error') {
    res.end(`data: ${JSON.stringify({ error: { message: 'fake generation failed', type: 'server_error', param: null, code: 500 } })}\n\n`);
    return;
  }
  // Let the words sent reach the client before the break.
  await new Promise((resolve) => setTimeout(resolve, 30));
  if (how === 'cut') req.socket.destroy();
  // stall: silence until the client leaves
}

/** How many words of the answer the request's text already holds, or the 400 message a real server would give. */
function startOf({ kind, surface, body }: WordsRequest): number | string {
  if (surface === 'completions') return typeof body.prompt === 'string' ? wordsDone(body.prompt) : 0;
  const messages = Array.isArray(body.messages) ? (body.messages as Json[]) : [];
  const last = messages.at(-1);
  const continues = body.continue_final_message === true;
  if (kind === 'vllm' || kind === 'sglang') {
    if (continues && body.add_generation_prompt !== false) {
      return 'continue_final_message and add_generation_prompt cannot both be true';
    }
    if (!continues) return 0;
  } else if (kind !== 'llamacpp' && kind !== 'ollama') {
    return 0;
  }
  return last?.role === 'assistant' && typeof last.content === 'string' ? wordsDone(last.content) : 0;
}

function wordsDone(text: string): number {
  const tail = ANSWER_TAIL.exec(text)?.[1];
  if (tail === undefined) return 0;
  const words = tail.split(' ');
  return words.every((word, i) => word === `w${i + 1}`) ? words.length : 0;
}

function promptWords(body: Json): number {
  const texts = Array.isArray(body.messages)
    ? (body.messages as Json[]).map((m) => (typeof m?.content === 'string' ? m.content : ''))
    : [typeof body.prompt === 'string' ? body.prompt : ''];
  return texts.reduce((sum, text) => sum + text.split(/\s+/).filter(Boolean).length, 0);
}

function json(res: ServerResponse, status: number, value: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}
