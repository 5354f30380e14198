/**
 * The streaming phase's upstream: an OpenAI-compatible server (just enough for the monitor
 * to list it: GET /v1/models) whose chat completions stream `--events-per-sec` chunk events
 * per stream, each 165 bytes (an OpenAI chat chunk) and carrying the wall-clock time it was written
 * (`"content":"@<ms since epoch, µs precision>"`), so the client can time every event's
 * trip through the relay. A stream sends `max_tokens` content events (then finish_reason,
 * a usage chunk and [DONE]) unless the client leaves first. With `--payload engine` the
 * streams take turns at the chunk shapes of vLLM, OpenAI/SGLang, Ollama and llama.cpp
 * (engine-payloads.ts), 219–273 bytes each.
 *
 * With `--surface messages` it plays a vLLM server that serves Anthropic's Messages API as
 * well (what Claude Code talks to): discovered as vLLM (owned_by, /version, /metrics) and
 * with POST /v1/messages streaming Anthropic's events, the stamp in each text delta
 * (`content_block_delta`, 133 bytes with its `event:` line) between message_start /
 * content_block_start and content_block_stop / message_delta / message_stop.
 *
 *   node --import tsx bench/stream-upstream.ts --events-per-sec 20 [--payload engine] [--surface messages]
 *
 * prints {"port":N,"pid":P} on its first stdout line when it listens (127.0.0.1 only).
 * GET /__stream/stats answers {"inflight":N}.
 */
import { createServer, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { discoveryResponse } from '@ai-lb/testkit';
import { engineChunkParts, engineStreamEnds } from './engine-payloads.ts';

export const STREAM_MODEL = 'bench-stream';
/** Upper bound of one stream's length, whatever the client asks: no stream runs for ever. */
const MAX_EVENTS = 20 * 600;

/** Wall-clock ms with sub-ms precision; the same clock in every process of this machine. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

const HEAD = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","model":"${STREAM_MODEL}","choices":[{"index":0,"delta":{"content":"@`;
const TAIL = '"},"finish_reason":null}]}\n\n';
const FINISH = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1764590000,"model":"${STREAM_MODEL}","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n`;
const USAGE = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1764590000,"model":"${STREAM_MODEL}","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}\n\n`;

/** How one stream's content events look around the stamp, and how the stream ends. */
export interface StreamShape {
  /** Written once before the first content event (Anthropic's message_start). */
  start?: string;
  head: string;
  tail: string;
  end: string;
}

const FLAT: StreamShape[] = [{ head: HEAD, tail: TAIL, end: `${FINISH}${USAGE}data: [DONE]\n\n` }];
const ENGINE: StreamShape[] = engineChunkParts(STREAM_MODEL).map(([head, tail], i) => ({
  head,
  tail,
  end: engineStreamEnds(STREAM_MODEL)[i],
}));

export function streamShapes(payload: 'flat' | 'engine'): readonly StreamShape[] {
  return payload === 'engine' ? ENGINE : FLAT;
}

export type StreamSurface = 'chat' | 'messages';
/** `--surface messages`: discovered as this vLLM serving STREAM_MODEL, uncapped. */
const VLLM = { models: [STREAM_MODEL], slots: 0 };
export const STREAM_SURFACES: readonly StreamSurface[] = ['chat', 'messages'];

const anthropicEvent = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

/** Anthropic's Messages stream as vLLM writes it. */
export const MESSAGES_SHAPE: StreamShape = {
  start:
    anthropicEvent('message_start', {
      message: {
        id: 'msg_bench',
        type: 'message',
        role: 'assistant',
        model: STREAM_MODEL,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 5, output_tokens: 0 },
      },
    }) + anthropicEvent('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
  head: 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"@',
  tail: '"}}\n\n',
  end:
    anthropicEvent('content_block_stop', { index: 0 }) +
    anthropicEvent('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 1 } }) +
    anthropicEvent('message_stop', {}),
};

/** One content event stamped with the time it is written. */
export function stampedEvent(shape: StreamShape = FLAT[0]): string {
  return `${shape.head}${wallClockMs().toFixed(3)}${shape.tail}`;
}

export function createStreamUpstream(eventsPerSec: number, payload: 'flat' | 'engine' = 'flat', surface: StreamSurface = 'chat') {
  const periodMs = 1000 / eventsPerSec;
  const shapes = streamShapes(payload);
  const streamPath = surface === 'messages' ? '/v1/messages' : '/chat/completions';
  let streams = 0;
  let inflight = 0;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    // What the monitor reads to call a server vLLM: the fake vLLM's own pages (testkit).
    const vllmPage = surface === 'messages' && req.method === 'GET' ? discoveryResponse('vllm', path, VLLM) : undefined;
    if (vllmPage !== undefined) {
      res.writeHead(vllmPage.status, { 'content-type': vllmPage.contentType });
      return void res.end(vllmPage.body);
    }
    if (req.method === 'GET' && path === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ object: 'list', data: [{ id: STREAM_MODEL, object: 'model', created: 0, owned_by: 'bench' }] }));
    }
    if (req.method === 'GET' && path === '/__stream/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ inflight }));
    }
    if (req.method !== 'POST' || !path.endsWith(streamPath)) {
      res.writeHead(404, { 'content-type': 'application/json' });
      return void res.end('{"error":{"message":"not found","type":"invalid_request_error"}}');
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let count = 100;
      let body: { max_tokens?: unknown; messages?: unknown } = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (typeof body.max_tokens === 'number' && body.max_tokens > 0) count = Math.min(MAX_EVENTS, Math.floor(body.max_tokens));
      } catch {
        // A body that is not JSON gets the default length: this server measures relays, not clients.
      }
      if (surface === 'messages' && !Array.isArray(body.messages)) {
        // What vLLM answers a body without messages — and how the monitor learns the route is here.
        res.writeHead(400, { 'content-type': 'application/json' });
        return void res.end('{"type":"error","error":{"type":"invalid_request_error","message":"messages: Field required"}}');
      }
      inflight++;
      const shape = surface === 'messages' ? MESSAGES_SHAPE : shapes[streams++ % shapes.length];
      stream(res, shape, count, periodMs, () => inflight--);
    });
  });
  server.keepAliveTimeout = 30_000;
  return server;
}

/** First event at once (the relay commits on it), then one every period from a random phase. */
function stream(res: ServerResponse, shape: StreamShape, count: number, periodMs: number, done: () => void) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  if (shape.start !== undefined) res.write(shape.start);
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    clearInterval(timer);
    done();
  };
  const tick = () => {
    if (ended) return;
    if (sent >= count) {
      res.end(shape.end);
      return end();
    }
    sent++;
    res.write(stampedEvent(shape));
  };
  res.once('close', end);
  tick();
  timer = setTimeout(() => {
    tick();
    if (!ended) timer = setInterval(tick, periodMs);
  }, Math.random() * periodMs);
}

function main() {
  const { values } = parseArgs({
    options: {
      'events-per-sec': { type: 'string', default: '20' },
      port: { type: 'string', default: '0' },
      payload: { type: 'string', default: 'flat' },
      surface: { type: 'string', default: 'chat' },
    },
  });
  if (values.payload !== 'flat' && values.payload !== 'engine') throw new Error(`--payload ${values.payload}: expected flat or engine`);
  const surface = values.surface as StreamSurface;
  if (!STREAM_SURFACES.includes(surface)) throw new Error(`--surface ${values.surface}: expected ${STREAM_SURFACES.join(' or ')}`);
  const server = createStreamUpstream(Number(values['events-per-sec']), values.payload, surface);
  server.listen(Number(values.port), '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    process.stdout.write(`${JSON.stringify({ port, pid: process.pid })}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
