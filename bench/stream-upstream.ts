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
 *   node --import tsx bench/stream-upstream.ts --events-per-sec 20 [--payload engine]
 *
 * prints {"port":N,"pid":P} on its first stdout line when it listens (127.0.0.1 only).
 * GET /__stream/stats answers {"inflight":N}.
 */
import { createServer, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
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

/** One content event stamped with the time it is written. */
export function stampedEvent(shape: StreamShape = FLAT[0]): string {
  return `${shape.head}${wallClockMs().toFixed(3)}${shape.tail}`;
}

export function createStreamUpstream(eventsPerSec: number, payload: 'flat' | 'engine' = 'flat') {
  const periodMs = 1000 / eventsPerSec;
  const shapes = streamShapes(payload);
  let streams = 0;
  let inflight = 0;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ object: 'list', data: [{ id: STREAM_MODEL, object: 'model', created: 0, owned_by: 'bench' }] }));
    }
    if (req.method === 'GET' && path === '/__stream/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ inflight }));
    }
    if (req.method !== 'POST' || !path.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      return void res.end('{"error":{"message":"not found","type":"invalid_request_error"}}');
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let count = 100;
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { max_tokens?: unknown };
        if (typeof body.max_tokens === 'number' && body.max_tokens > 0) count = Math.min(MAX_EVENTS, Math.floor(body.max_tokens));
      } catch {
        // A body that is not JSON gets the default length: this server measures relays, not clients.
      }
      inflight++;
      stream(res, shapes[streams++ % shapes.length], count, periodMs, () => inflight--);
    });
  });
  server.keepAliveTimeout = 30_000;
  return server;
}

/** First event at once (the relay commits on it), then one every period from a random phase. */
function stream(res: ServerResponse, shape: StreamShape, count: number, periodMs: number, done: () => void) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
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
    },
  });
  if (values.payload !== 'flat' && values.payload !== 'engine') throw new Error(`--payload ${values.payload}: expected flat or engine`);
  const server = createStreamUpstream(Number(values['events-per-sec']), values.payload);
  server.listen(Number(values.port), '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    process.stdout.write(`${JSON.stringify({ port, pid: process.pid })}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
