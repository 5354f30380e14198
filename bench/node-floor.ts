/**
 * The node floor: the least work any Node.js gateway must do per request, so the bench can
 * say how close the real gateway gets to it. Bare node:http; read the body once, JSON.parse,
 * rewrite `model`, JSON.stringify, forward round-robin through one keep-alive undici Pool
 * per upstream, stream the answer back as it arrives. No framework, no state, no metrics.
 *
 *   node --import tsx bench/node-floor.ts --upstreams 127.0.0.1:5001,127.0.0.1:5002
 *
 * prints {"port":N,"pid":P} on its first stdout line when it listens (127.0.0.1 only).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Pool } from 'undici';
import { readBody, rewriteModel, runForwarderCli, sendError } from './forwarder-cli.ts';

export interface NodeFloor {
  server: Server;
  close(): Promise<void>;
}

/** `upstreams` are "host:port"; `model` is what a sentinel (`auto`) or a missing model becomes. */
export function createNodeFloor(upstreams: readonly string[], model: string): NodeFloor {
  if (upstreams.length === 0) throw new Error('node-floor needs at least one upstream (--upstreams host:port,…)');
  const pools = upstreams.map((node) => new Pool(`http://${node}`, { keepAliveTimeout: 30_000 }));
  let next = 0;
  const server = createServer((req, res) => {
    readBody(req, res, (body) => {
      const payload = rewriteModel(body, model);
      if (payload === undefined) return sendError(res, 400, 'request body is not a JSON object');
      forward(pools[next++ % pools.length], req, res, payload);
    });
  });
  server.keepAliveTimeout = 30_000;
  return {
    server,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(pools.map((pool) => pool.close()));
    },
  };
}

function forward(pool: Pool, req: IncomingMessage, res: ServerResponse, payload: string) {
  const abort = new AbortController();
  // A client that goes away cancels the upstream request at once (SPEC: "A client that
  // disconnects cancels its upstream request"), so the floor pays for that too.
  res.once('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  pool
    .stream(
      {
        path: req.url ?? '/',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: payload,
        signal: abort.signal,
      },
      ({ statusCode, headers }) => {
        res.writeHead(statusCode, { 'content-type': String(headers['content-type'] ?? 'application/json') });
        return res;
      },
    )
    .catch(() => {
      if (!res.headersSent) sendError(res, 502, 'upstream failed');
      else res.destroy();
    });
}

function main() {
  runForwarderCli('node-floor', (upstreams, model) => createNodeFloor(upstreams, model).server);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
