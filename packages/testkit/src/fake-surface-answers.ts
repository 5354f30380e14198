/**
 * How the fake answers every surface beyond chat and embeddings (fake-surfaces.ts says which
 * kind serves which), and the faults on them. A request missing what the real server requires
 * is refused with 400 before it counts as inference, as real servers validate first: the
 * monitor's `{}` route probe gets that 400 and costs no generation.
 *
 * Faults by model name (or failMode) work on every surface in its own error and stream format:
 * fault-500/-503/-status-<code>-…, fault-500-once, fault-429-retry-after-<s>, fault-reset,
 * fault-hang, fault-slow-<ms>, fault-cut-stream and fault-stall-stream (two events, then
 * the socket dies / goes silent), fault-echo (JSON answers carry the body and headers seen).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FakeServerOptions, FakeServerStats } from './fake-llm-server.ts';
import type { ServerFakeKind } from './fake-kinds.ts';
import {
  errorBody,
  FAKE_PIECES,
  FAKE_TEXT,
  FAKE_USAGE,
  json,
  sendJson,
  sleep,
  sseEvent,
  sseStream,
  type ErrorFormat,
  type FakeAnswer,
} from './fake-http.ts';
import { answerMessages } from './fake-messages-api.ts';
import { answerOllama } from './fake-ollama-api.ts';
import { answerResponses, hasStoredResponse } from './fake-responses-api.ts';
import { answerWords, isWordsRequest } from './fake-words.ts';
import type { EndpointKey, FakeEndpoint } from './fake-surfaces.ts';

type Json = Record<string, unknown>;

export interface SurfaceRequest {
  endpoint: FakeEndpoint;
  body: Json;
  /** The request's model; `fault` is the fault to play (the model, or failMode's). */
  model: string;
  fault: string | null;
  req: IncomingMessage;
  res: ServerResponse;
  options: FakeServerOptions;
  stats: FakeServerStats;
}

/** What each endpoint requires (field names, any of a group); checked before anything else. */
const REQUIRED: Partial<Record<EndpointKey, string[][]>> = {
  'POST /v1/chat/completions': [['messages']],
  'POST /v1/completions': [['prompt']],
  'POST /v1/embeddings': [['input']],
  'POST /v1/responses': [['input']],
  'POST /v1/messages': [['messages'], ['max_tokens']],
  'POST /v1/messages/count_tokens': [['messages']],
  'POST /api/chat': [['model']],
  'POST /api/generate': [['model']],
  'POST /api/embed': [['model'], ['input']],
  'POST /api/embeddings': [['model']],
  'POST /api/show': [['model', 'name']],
  'POST /v1/rerank': [['query'], ['documents']],
  'POST /rerank': [['query'], ['documents']],
  'POST /v2/rerank': [['query'], ['documents']],
  'POST /v1/score': [
    ['text_1', 'queries'],
    ['text_2', 'documents'],
  ],
  'POST /v1/audio/transcriptions': [['file'], ['model']],
  'POST /v1/audio/translations': [['file'], ['model']],
  'POST /v1/audio/speech': [['input']],
  'POST /v1/images/generations': [['prompt']],
};

export function errorFormatOf(endpoint: FakeEndpoint): ErrorFormat {
  if (endpoint.surface === 'messages' || endpoint.surface === 'messages_count_tokens') return 'anthropic';
  return endpoint.surface === 'ollama' ? 'ollama' : 'openai';
}

/**
 * The 400 a real server gives a request without its required fields (and the 404 for a
 * response id it does not keep): true when it answered.
 */
export function rejectInvalid(endpoint: FakeEndpoint, body: Json, res: ServerResponse): boolean {
  if (endpoint.surface === 'responses_by_id' && !hasStoredResponse(endpoint.id)) {
    sendJson(res, 404, errorBody('openai', 404, `Response with id '${endpoint.id}' not found.`));
    return true;
  }
  const missing = (REQUIRED[endpoint.key] ?? []).find((group) => group.every((field) => body[field] === undefined || body[field] === null));
  if (!missing) return false;
  const field = missing.join(' or ');
  const message = endpoint.surface === 'ollama' ? `${field} is required` : `Field required: ${field}`;
  sendJson(res, 400, errorBody(errorFormatOf(endpoint), 400, message));
  return true;
}

export async function answerSurface(request: SurfaceRequest): Promise<void> {
  const { res, req, fault } = request;
  if (request.endpoint.surface === 'completions' && isWordsRequest(fault ?? '', request.model)) {
    const { body, model, stats, options } = request;
    return answerWords({ req, res, kind: options.kind, surface: 'completions', body, model, fault: fault ?? '', stats });
  }
  const played = fault ? await playFault(fault, request) : 'answer';
  if (played === 'done') return;
  const answer = surfaceAnswer(request);
  if (request.model === 'fault-echo' && answer.kind === 'json' && isRecord(answer.body)) {
    answer.body = { ...answer.body, echo: { body: request.body, headers: req.headers } };
  }
  await writeAnswer(answer, res, req, played);
}

function surfaceAnswer({ endpoint, body, model, options }: SurfaceRequest): FakeAnswer {
  const kind = options.kind as ServerFakeKind;
  switch (endpoint.surface) {
    case 'responses':
    case 'responses_by_id':
      return answerResponses(kind, endpoint, body, model);
    case 'messages':
    case 'messages_count_tokens':
      return answerMessages(endpoint, body, model);
    case 'ollama':
      return answerOllama(endpoint, body, model, options.models);
    case 'completions':
      return completion(body, model);
    case 'rerank':
    case 'rerank_v2':
      return rerank(body, model);
    case 'score':
      return score(body, model);
    case 'audio_transcriptions':
    case 'audio_translations':
      return body.response_format === 'text'
        ? { kind: 'bytes', status: 200, contentType: 'text/plain; charset=utf-8', chunks: [Buffer.from(FAKE_TEXT)] }
        : json({ text: FAKE_TEXT, usage: { type: 'duration', seconds: 1 } });
    case 'audio_speech':
      return speech(body);
    case 'images_generations':
      return image(body);
    default:
      return json({ error: { message: `no fake answer for ${endpoint.key}`, type: 'server_error' } }, 500);
  }
}

type Played = 'done' | 'answer' | 'cut' | 'stall';

/** Plays a fault in the surface's own format; 'answer' when the normal answer should follow. */
async function playFault(fault: string, { endpoint, model, req, res, stats }: SurfaceRequest): Promise<Played> {
  const format = errorFormatOf(endpoint);
  const param = (prefix: string) => (fault.startsWith(prefix) ? Number(fault.slice(prefix.length)) : Number.NaN);
  const status = /^fault-(\d{3})$/.exec(fault)?.[1] ?? /^fault-status-(\d{3})-/.exec(fault)?.[1];
  if (status) {
    sendJson(res, Number(status), errorBody(format, Number(status), `fake upstream error ${status}`));
    return 'done';
  }
  if (fault === 'fault-500-once') {
    if (stats.byModel[model] !== 1) return 'answer';
    sendJson(res, 500, errorBody(format, 500, 'fake upstream error 500'));
    return 'done';
  }
  const retryAfter = param('fault-429-retry-after-');
  if (Number.isFinite(retryAfter)) {
    sendJson(res, 429, errorBody(format, 429, 'fake upstream error 429'), { 'retry-after': String(retryAfter) });
    return 'done';
  }
  if (fault === 'fault-reset') {
    req.socket.destroy();
    return 'done';
  }
  if (fault === 'fault-hang') return 'done'; // the socket stays open until the client leaves
  const slow = param('fault-slow-');
  if (Number.isFinite(slow)) await sleep(slow);
  if (fault === 'fault-cut-stream') return 'cut';
  if (fault === 'fault-stall-stream') return 'stall';
  return 'answer';
}

/** Writes an answer; a stream under a cut/stall fault sends two events first, then breaks. */
async function writeAnswer(answer: FakeAnswer, res: ServerResponse, req: IncomingMessage, played: Played) {
  if (answer.kind === 'json') return sendJson(res, answer.status, answer.body, answer.headers);
  if (answer.kind === 'bytes') {
    res.writeHead(answer.status, { 'content-type': answer.contentType });
    for (const chunk of answer.chunks) res.write(chunk);
    return void res.end();
  }
  res.writeHead(200, { 'content-type': answer.contentType, 'cache-control': 'no-cache' });
  res.flushHeaders();
  const events = played === 'answer' ? answer.events : answer.events.slice(0, 2);
  for (const event of events) res.write(event);
  if (played === 'answer') return void res.end();
  await sleep(30); // let the partial stream reach the client before it breaks
  if (played === 'cut') req.socket.destroy();
}

function completion(body: Json, model: string): FakeAnswer {
  const id = `cmpl-${process.pid}-${Date.now()}`;
  const created = Math.floor(Date.now() / 1000);
  const choice = (text: string, finish: string | null) => ({ index: 0, text, logprobs: null, finish_reason: finish });
  if (body.stream !== true)
    return json({ id, object: 'text_completion', created, model, choices: [choice(FAKE_TEXT, 'stop')], usage: FAKE_USAGE });
  const chunk = (text: string, finish: string | null) => ({
    id,
    object: 'text_completion',
    created,
    model,
    choices: [choice(text, finish)],
  });
  const events = [...FAKE_PIECES.map((piece) => sseEvent(chunk(piece, null))), sseEvent(chunk('', 'stop'))];
  if ((body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true) {
    events.push(sseEvent({ id, object: 'text_completion', created, model, choices: [], usage: FAKE_USAGE }));
  }
  return sseStream([...events, 'data: [DONE]\n\n']);
}

/** vLLM's rerank shape (Jina/Cohere v1): results by descending relevance. */
function rerank(body: Json, model: string): FakeAnswer {
  const documents = Array.isArray(body.documents) ? body.documents : [];
  const topN = typeof body.top_n === 'number' ? body.top_n : documents.length;
  const results = documents
    .map((document, index) => ({
      index,
      document: { text: typeof document === 'string' ? document : (document as Json)?.text },
      relevance_score: 1 / (index + 2),
    }))
    .slice(0, topN);
  return json({ id: `rerank-${process.pid}`, model, usage: { total_tokens: 5 * documents.length }, results });
}

function score(body: Json, model: string): FakeAnswer {
  const second = body.text_2 ?? body.documents;
  const count = Array.isArray(second) ? second.length : 1;
  const data = Array.from({ length: count }, (_, index) => ({ index, object: 'score', score: 1 / (index + 2) }));
  return json({
    id: `score-${process.pid}`,
    object: 'list',
    created: Math.floor(Date.now() / 1000),
    model,
    data,
    usage: { prompt_tokens: 5 * count, total_tokens: 5 * count },
  });
}

/** Speech comes back as bytes, streamed: an MP3 frame header (or WAV's RIFF) and silence. */
function speech(body: Json): FakeAnswer {
  const wav = body.response_format === 'wav';
  const head = wav
    ? Buffer.from('RIFF\x24\x00\x00\x00WAVEfmt ', 'latin1')
    : Buffer.from([0x49, 0x44, 0x33, 0x04, 0x00, 0x00, 0xff, 0xfb, 0x90, 0x64]);
  return {
    kind: 'bytes',
    status: 200,
    contentType: wav ? 'audio/wav' : 'audio/mpeg',
    chunks: [head, Buffer.alloc(4096), Buffer.alloc(4096)],
  };
}

/** A 1×1 PNG, as b64_json (the default of most servers) or as a URL. */
const PNG_1PX = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

function image(body: Json): FakeAnswer {
  const n = typeof body.n === 'number' && body.n > 0 ? Math.min(body.n, 4) : 1;
  const item = body.response_format === 'url' ? { url: 'http://127.0.0.1/fake.png' } : { b64_json: PNG_1PX };
  return json({ created: Math.floor(Date.now() / 1000), data: Array.from({ length: n }, () => item) });
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
