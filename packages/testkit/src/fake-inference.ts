/**
 * How the fake server answers POST /v1/chat/completions and /v1/embeddings. Faults are
 * chosen by the request's model name (stream faults only with stream:true) so one server process can play many failure cases:
 *
 * | model                          | behaviour                                                       |
 * |--------------------------------|-----------------------------------------------------------------|
 * | fault-500 / fault-503          | that status, OpenAI envelope, every time                        |
 * | fault-500-once                 | 500 on the first request for the model since the last reset, then ok |
 * | fault-429-retry-after-<s>      | 429 with Retry-After: s                                         |
 * | fault-reset                    | the socket is destroyed before any answer                       |
 * | fault-hang                     | never answers (until the client goes away)                      |
 * | fault-slow-<ms>                | a normal answer after ms (holds a slot; capacity tests)         |
 * | fault-slow-first-token-<ms>    | head at once; stream: first chunk after ms; non-stream: body after ms |
 * | fault-cut-stream               | stream: two chunks, then the socket is destroyed (non-stream: half a body) |
 * | fault-stall-stream             | stream: two chunks, then silence (non-stream: head, half a body, silence) |
 * | fault-bad-sse                  | stream with one event whose data is not JSON (non-stream: a 200 body that is not JSON) |
 * | fault-no-done                  | stream ends after finish_reason without [DONE] (non-stream: body ended by closing the connection, no length) |
 * | fault-no-finish                | stream ends cleanly after content chunks: truncated             |
 * | fault-error-first-event        | 200 stream whose first event is an error event (non-stream: 200 {"error":…}) |
 * | fault-drip-event               | stream: one chunk, then one event that never ends, 200 bytes per ms (until the client leaves; at most 64 MiB) |
 * | fault-context-length           | 400, OpenAI code context_length_exceeded                        |
 * | fault-content-policy           | 400, OpenAI code content_policy_violation                       |
 * | fault-detail-error             | 500 {"detail":"…"}, as FastAPI answers                          |
 * | fault-html-error               | 500 text/html page                                              |
 * | fault-status-<code>-<format>   | any status; format json | detail | html | text                  |
 * | fault-echo                     | normal answer plus `echo`: the body and headers it received     |
 * | fault-big-<kb>                 | a valid answer of about kb KiB: stream in 1 KiB chunks written as fast as the socket takes them; non-stream one body |
 * | fault-html-200                 | 200 text/html page for any request (a proxy's or captive portal's page) |
 * | words-<n>                      | the deterministic answer "w1 … wn" a continuation can finish (fake-words.ts) |
 * | fault-cut/stall/error-after-<k> | words, broken after k of them (fake-words.ts)                  |
 *
 * Per-process switch through POST /__fake/config: {"failMode":"500"|"503"|"reset"|"hang"}
 * makes every inference request fail that way, {"failMode":"fault-<name>"} plays that fault
 * for every model (so one node of several can fail); {"failMode":null} heals the server;
 * {"answerShape":"engine"} answers non-stream chat as vLLM, llama.cpp and OpenAI do in turn
 * (fake-answer-shapes.ts), {"answerShape":"flat"} with the small default answer again.
 * Streams send a usage chunk before [DONE] when asked (stream_options.include_usage), and
 * every answer's id names the server's pid, so a test can tell which node answered.
 * Normal models take the fast path (one prefix check), since this server is also the
 * benchmark's upstream. A chat request that offers tools is answered with a tool call
 * (fake-tool-call.ts); every other surface (completions, Responses, Messages, Ollama's API,
 * rerank, score, audio, images) is answered by fake-surface-answers.ts, faults included.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FakeServerOptions, FakeServerStats } from './fake-llm-server.ts';
import { parseRequestBody, record } from './fake-http.ts';
import { engineShapedAnswer } from './fake-answer-shapes.ts';
import { answerSurface, rejectInvalid } from './fake-surface-answers.ts';
import type { FakeEndpoint } from './fake-surfaces.ts';
import { answerChatToolCall, chatToolCall } from './fake-tool-call.ts';
import { answerWords, isWordsRequest } from './fake-words.ts';

interface Context {
  options: FakeServerOptions;
  stats: FakeServerStats;
}

interface InferenceBody {
  model?: string;
  stream?: boolean;
  [field: string]: unknown;
}

const STREAM_FAULTS = new Set([
  'fault-cut-stream',
  'fault-stall-stream',
  'fault-bad-sse',
  'fault-no-done',
  'fault-no-finish',
  'fault-error-first-event',
  'fault-drip-event',
]);
/** Stream faults with a non-stream variant of their own (the rest answer stream:false normally). */
const NON_STREAM_FAULTS = new Set(['fault-stall-stream', 'fault-bad-sse', 'fault-no-done', 'fault-error-first-event']);
const USAGE = { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `endpoint` is the route of a real kind (fake-surfaces.ts); the fault kinds answer any POST as chat. */
export async function handleInference(req: IncomingMessage, res: ServerResponse, { options, stats }: Context, endpoint?: FakeEndpoint) {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = (await parseRequestBody(Buffer.concat(chunks), req.headers['content-type'])) as InferenceBody;
  if (endpoint && rejectInvalid(endpoint, body, res)) return;
  const model = typeof body.model === 'string' ? body.model : '';
  const path = (req.url ?? '/').split('?')[0];
  stats.requests++;
  stats.byModel[model] = (stats.byModel[model] ?? 0) + 1;
  if (req.headers.authorization) record(stats.authorizations, req.headers.authorization);
  if (typeof req.headers['x-request-id'] === 'string') record(stats.requestIds, req.headers['x-request-id']);
  if (typeof req.headers.traceparent === 'string') record(stats.traceparents, req.headers.traceparent);
  stats.inflight++;
  stats.peakInflight = Math.max(stats.peakInflight, stats.inflight);
  let done = false;
  res.once('finish', () => (done = true));
  res.once('close', () => {
    if (!done) stats.aborted++;
    stats.inflight--;
  });
  if (options.latencyMs > 0) await sleep(options.latencyMs);

  // failMode "fault-…" makes this server play that fault for every model (one node of several failing).
  const fault = options.failMode?.startsWith('fault-') ? options.failMode : model;
  if (endpoint && endpoint.surface !== 'chat_completions' && endpoint.surface !== 'embeddings') {
    return answerSurface({ endpoint, body, model, fault: surfaceFault(options.failMode, model), req, res, options, stats });
  }
  if (isWordsRequest(fault, model) && !path.endsWith('/embeddings')) {
    return answerWords({ req, res, kind: options.kind, surface: 'chat', body, model, fault, stats });
  }
  if (options.failMode && fault === model) return failWholeServer(options.failMode, req, res);
  if (fault.startsWith('fault-') && (await answerFault(fault, model, body, req, res, stats))) return;
  answerNormally(path, model, body, res, { options, stats }, model === 'fault-echo' ? echoOf(body, req) : undefined);
}

function answerNormally(path: string, model: string, body: InferenceBody, res: ServerResponse, { options, stats }: Context, echo?: object) {
  if (path.endsWith('/embeddings')) {
    sendJson(res, 200, {
      object: 'list',
      // One vector per input, as real servers answer a list.
      data: (Array.isArray(body.input) ? body.input : [body.input]).map((_, index) => ({
        object: 'embedding',
        index,
        embedding: embeddingOf(body),
      })),
      model,
      usage: { prompt_tokens: 3, total_tokens: 3 },
      ...(echo ? { echo } : {}),
    });
    return;
  }
  const id = `chatcmpl-${process.pid}-${stats.requests}`;
  const call = chatToolCall(body, `call_${process.pid}_${stats.requests}`);
  if (call) return answerChatToolCall(res, body, call, id, model);
  if (body.stream) {
    startStream(res);
    for (const piece of ['Hello', ' from', ' fake']) res.write(sse(chunk(id, model, { content: piece }, null)));
    res.write(sse(chunk(id, model, {}, 'stop')));
    if (wantsUsage(body)) res.write(sse({ ...chunk(id, model, {}, null), choices: [], usage: USAGE }));
    res.end('data: [DONE]\n\n');
    return;
  }
  const answer =
    options.answerShape === 'engine' ? engineShapedAnswer(stats.requests, id, model) : completion(id, model, 'Hello from fake');
  sendJson(res, 200, { ...answer, ...(echo ? { echo } : {}) });
}

/**
 * Returns false when the fault only delays and the normal answer should follow. `model` is
 * the fault played, `requested` the request's model (they differ under failMode).
 */
async function answerFault(
  model: string,
  requested: string,
  body: InferenceBody,
  req: IncomingMessage,
  res: ServerResponse,
  stats: FakeServerStats,
) {
  const id = `chatcmpl-${process.pid}-${stats.requests}`;
  const param = (prefix: string) => (model.startsWith(prefix) ? Number(model.slice(prefix.length)) : NaN);

  if (model === 'fault-500' || model === 'fault-503') {
    errorStatus(res, Number(model.slice(6)), 'json');
    return true;
  }
  if (model === 'fault-500-once') {
    if (stats.byModel[requested] === 1) {
      errorStatus(res, 500, 'json');
      return true;
    }
    return false;
  }
  const retryAfter = param('fault-429-retry-after-');
  if (Number.isFinite(retryAfter)) {
    res.setHeader('retry-after', String(retryAfter));
    errorStatus(res, 429, 'json');
    return true;
  }
  if (model === 'fault-reset') {
    req.socket.destroy();
    return true;
  }
  if (model === 'fault-hang') return true; // the socket stays open until the client leaves
  const slow = param('fault-slow-');
  if (Number.isFinite(slow)) {
    await sleep(slow);
    return false;
  }
  const firstToken = param('fault-slow-first-token-');
  if (Number.isFinite(firstToken)) {
    if (!body.stream) {
      await slowBody(res, firstToken, model, stats);
      return true;
    }
    startStream(res);
    await sleep(firstToken);
    if (res.destroyed) return true;
    res.write(sse(chunk(id, model, { content: 'late' }, null)));
    res.write(sse(chunk(id, model, {}, 'stop')));
    res.end('data: [DONE]\n\n');
    return true;
  }
  if (model === 'fault-context-length') {
    sendJson(res, 400, {
      error: {
        message: "This model's maximum context length is 8 tokens. However, your messages resulted in 9 tokens.",
        type: 'invalid_request_error',
        param: 'messages',
        code: 'context_length_exceeded',
      },
    });
    return true;
  }
  if (model === 'fault-content-policy') {
    sendJson(res, 400, {
      error: {
        message: 'Your request was rejected by the content policy.',
        type: 'invalid_request_error',
        param: null,
        code: 'content_policy_violation',
      },
    });
    return true;
  }
  if (model === 'fault-detail-error') {
    errorStatus(res, 500, 'detail');
    return true;
  }
  if (model === 'fault-html-error') {
    errorStatus(res, 500, 'html');
    return true;
  }
  const status = /^fault-status-(\d{3})-(json|detail|html|text)$/.exec(model);
  if (status) {
    errorStatus(res, Number(status[1]), status[2] as ErrorFormat);
    return true;
  }
  const bigKb = param('fault-big-');
  if (Number.isFinite(bigKb)) {
    await bigAnswer(res, id, model, bigKb, body.stream === true);
    return true;
  }
  if (model === 'fault-html-200') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><html><head><title>Sign in</title></head><body>Sign in to the network</body></html>');
    return true;
  }
  if (model === 'fault-cut-stream' && !body.stream) {
    // Non-stream variant: a head and half a body, then the connection dies.
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '200' });
    res.write('{"id":"cut","object":"chat.completion","choices":[');
    await sleep(30);
    req.socket.destroy();
    return true;
  }
  if (body.stream && STREAM_FAULTS.has(model)) {
    await faultyStream(model, id, req, res);
    return true;
  }
  if (!body.stream && NON_STREAM_FAULTS.has(model)) {
    await faultyJson(model, id, req, res);
    return true;
  }
  return false;
}

/** A long valid answer; a stream waits on backpressure, so a client that stops reading stops it. */
async function bigAnswer(res: ServerResponse, id: string, model: string, kb: number, stream: boolean) {
  const piece = 'x'.repeat(1000);
  if (!stream) return sendJson(res, 200, completion(id, model, piece.repeat(kb)));
  startStream(res);
  for (let i = 0; i < kb && !res.destroyed; i++) {
    if (!res.write(sse(chunk(id, model, { content: piece }, null)))) {
      await new Promise<void>((resolve) => {
        res.once('drain', resolve);
        res.once('close', resolve);
      });
    }
  }
  if (res.destroyed) return;
  res.write(sse(chunk(id, model, {}, 'stop')));
  res.end('data: [DONE]\n\n');
}

/** Non-stream: the head at once, the whole body only after `ms` (a slow generation). */
async function slowBody(res: ServerResponse, ms: number, model: string, stats: FakeServerStats) {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.flushHeaders();
  await sleep(ms);
  if (res.destroyed) return;
  res.end(JSON.stringify(completion(`chatcmpl-${process.pid}-${stats.requests}`, model, 'late')));
}

/** The non-stream counterparts of the stream faults. */
async function faultyJson(model: string, id: string, req: IncomingMessage, res: ServerResponse) {
  if (model === 'fault-error-first-event') {
    // Some servers report a failed generation as a 200 whose body is an error.
    return sendJson(res, 200, { error: { message: 'model failed to load', type: 'server_error', param: null, code: 'model_load_failed' } });
  }
  if (model === 'fault-bad-sse') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return void res.end('this is not json');
  }
  if (model === 'fault-stall-stream') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return void res.write('{"id":"stalled","object":"chat.completion","choices":[');
  }
  // fault-no-done: a complete body with neither Content-Length nor chunked framing; only the
  // connection closing ends it, as HTTP/1.0 and some minimal servers answer.
  const body = JSON.stringify(completion(id, model, 'Hello from fake'));
  req.socket.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${body}`);
}

function completion(id: string, model: string, content: string) {
  return {
    id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: USAGE,
  };
}

function wantsUsage(body: InferenceBody): boolean {
  const options = body.stream_options as { include_usage?: unknown } | undefined;
  return options?.include_usage === true;
}

async function faultyStream(model: string, id: string, req: IncomingMessage, res: ServerResponse) {
  startStream(res);
  if (model === 'fault-error-first-event') {
    res.end(sse({ error: { message: 'model failed to load', type: 'server_error', param: null, code: 'model_load_failed' } }));
    return;
  }
  res.write(sse(chunk(id, model, { content: 'Hello' }, null)));
  if (model === 'fault-drip-event') return dripEndlessEvent(res);
  if (model === 'fault-bad-sse') res.write('data: {this is not json\n\n');
  res.write(sse(chunk(id, model, { content: ' partial' }, null)));
  // Give the bytes time to travel before the socket dies, so the client sees a partial stream.
  await sleep(30);
  if (model === 'fault-cut-stream') return void req.socket.destroy();
  if (model === 'fault-stall-stream') return; // silence until the client leaves
  if (model === 'fault-no-finish') return void res.end();
  res.write(sse(chunk(id, model, {}, 'stop')));
  if (model === 'fault-no-done') return void res.end();
  res.end('data: [DONE]\n\n');
}

/**
 * A hostile or broken upstream: one event that never ends, written as the issue found it,
 * 200 bytes per millisecond. Bounded (64 MiB) so a test that forgets the client cannot run
 * it forever; it stops as soon as the client (the gateway) goes away.
 */
function dripEndlessEvent(res: ServerResponse): void {
  const drip = 'x'.repeat(200);
  let sent = 0;
  res.write('data: {"choices":[{"index":0,"delta":{"content":"');
  const timer = setInterval(() => {
    if (res.destroyed || sent >= 64 * 1024 * 1024) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    res.write(drip);
    sent += drip.length;
  }, 1);
  res.once('close', () => clearInterval(timer));
}

function failWholeServer(failMode: string, req: IncomingMessage, res: ServerResponse) {
  if (failMode === 'reset') return void req.socket.destroy();
  if (failMode === 'hang') return;
  const status = Number(failMode);
  errorStatus(res, Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500, 'json');
}

type ErrorFormat = 'json' | 'detail' | 'html' | 'text';

function errorStatus(res: ServerResponse, status: number, format: ErrorFormat) {
  const message = `fake upstream error ${status}`;
  if (format === 'json') {
    sendJson(res, status, {
      error: { message, type: status < 500 ? 'invalid_request_error' : 'server_error', param: null, code: `fake_${status}` },
    });
  } else if (format === 'detail') {
    sendJson(res, status, { detail: message });
  } else if (format === 'html') {
    res.writeHead(status, { 'content-type': 'text/html' });
    res.end(`<html><head><title>${status}</title></head><body><h1>${message}</h1></body></html>`);
  } else {
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(message);
  }
}

/** The openai SDK asks for base64 by default (as real servers support): little-endian float32s. */
function embeddingOf(body: InferenceBody): number[] | string {
  const vector = [0.1, 0.2, 0.3];
  if (body.encoding_format !== 'base64') return vector;
  return Buffer.from(new Float32Array(vector).buffer).toString('base64');
}

function echoOf(body: InferenceBody, req: IncomingMessage) {
  return { body, headers: req.headers };
}

function startStream(res: ServerResponse) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
}

function sendJson(res: ServerResponse, status: number, value: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

function sse(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

function chunk(id: string, model: string, delta: object, finishReason: string | null) {
  return {
    id,
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  };
}

/** The fault a surface request plays: failMode's ("500", "reset", "hang", "fault-…") over the model's. */
function surfaceFault(failMode: string | null | undefined, model: string): string | null {
  if (failMode) return failMode.startsWith('fault-') ? failMode : `fault-${failMode}`;
  return model.startsWith('fault-') ? model : null;
}
