/**
 * The floor relay: the least work any Node.js gateway must do per streamed event, so the
 * bench can say what the gateway's relaying costs beyond it. The node floor's request side
 * (read the body, rewrite `model`, one keep-alive undici Pool per upstream, round-robin);
 * on the way back it splits the upstream's bytes at blank lines and writes whole events
 * only, as Buffers — no decoding, no JSON parsing, no inspection.
 *
 *   node --import tsx bench/stream-floor.ts --upstreams 127.0.0.1:5001
 *
 * prints {"port":N,"pid":P} on its first stdout line when it listens (127.0.0.1 only).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool } from 'undici';
import { readBody, rewriteModel, runForwarderCli, sendError } from './forwarder-cli.ts';

const BLANK_LINE = Buffer.from('\n\n');

export function createStreamFloor(upstreams: readonly string[], model: string) {
  if (upstreams.length === 0) throw new Error('stream-floor needs at least one upstream (--upstreams host:port,…)');
  const pools = upstreams.map((node) => new Pool(`http://${node}`, { keepAliveTimeout: 30_000 }));
  let next = 0;
  const server = createServer((req, res) => {
    readBody(req, res, (body) => {
      const payload = rewriteModel(body, model);
      if (payload === undefined) return sendError(res, 400, 'request body is not a JSON object');
      void relay(pools[next++ % pools.length], req, res, payload);
    });
  });
  server.keepAliveTimeout = 30_000;
  return server;
}

async function relay(pool: Pool, req: IncomingMessage, res: ServerResponse, payload: string) {
  const abort = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  let upstream: Awaited<ReturnType<Pool['request']>>;
  try {
    upstream = await pool.request({
      path: req.url ?? '/',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: payload,
      signal: abort.signal,
    });
  } catch {
    return sendError(res, 502, 'upstream failed');
  }
  res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'text/event-stream') });
  let pending: Buffer | null = null;
  upstream.body.on('data', (chunk: Buffer) => {
    const bytes = pending === null ? chunk : Buffer.concat([pending, chunk]);
    // Whole events only: everything up to the last blank line goes out in one write.
    const end = bytes.lastIndexOf(BLANK_LINE);
    if (end === -1) {
      pending = bytes;
      return;
    }
    pending = end + 2 < bytes.length ? bytes.subarray(end + 2) : null;
    if (!res.write(bytes.subarray(0, end + 2))) {
      upstream.body.pause();
      res.once('drain', () => upstream.body.resume());
    }
  });
  upstream.body.once('end', () => res.end(pending ?? undefined));
  upstream.body.on('error', () => res.destroy());
}

function main() {
  runForwarderCli('stream-floor', (upstreams, model) => createStreamFloor(upstreams, model));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
