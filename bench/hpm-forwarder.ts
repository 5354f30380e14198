/**
 * The http-proxy-middleware forwarder: how the same job is usually done with express +
 * http-proxy-middleware 3.x (express.json() parses, a middleware rewrites `model`,
 * fixRequestBody re-serializes, http-proxy pipes the answer back) over a keep-alive
 * node:http Agent. The bench keeps its numbers beside the undici node floor's so the
 * choice of undici for the gateway's forwarding stays measured, not assumed.
 *
 *   node --import tsx bench/hpm-forwarder.ts --upstreams 127.0.0.1:5001,127.0.0.1:5002
 *
 * prints {"port":N,"pid":P} on its first stdout line when it listens (127.0.0.1 only).
 */
import { Agent, createServer, type Server } from 'node:http';
import express, { type ErrorRequestHandler, type Request, type Response } from 'express';
import { createProxyMiddleware, fixRequestBody } from 'http-proxy-middleware';
import { runForwarderCli, sendError } from './forwarder-cli.ts';

export interface HpmForwarder {
  app: express.Express;
  close(server: Server): Promise<void>;
}

export function createHpmForwarder(upstreams: readonly string[], model: string): HpmForwarder {
  if (upstreams.length === 0) throw new Error('hpm-forwarder needs at least one upstream (--upstreams host:port,…)');
  const targets = upstreams.map((node) => `http://${node}`);
  const agent = new Agent({ keepAlive: true, keepAliveMsecs: 30_000 });
  let next = 0;
  const app = express();
  app.use(express.json({ limit: '10mb' }));
  app.use((req: Request, res: Response, nextHandler) => {
    const body = req.body as { model?: unknown } | undefined;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return sendError(res, 400, 'request body is not a JSON object');
    }
    if (typeof body.model !== 'string' || body.model.toLowerCase() === 'auto') body.model = model;
    nextHandler();
  });
  app.use(
    createProxyMiddleware<Request, Response>({
      target: targets[0],
      router: () => targets[next++ % targets.length],
      agent,
      on: {
        proxyReq: fixRequestBody,
        error: (_error, _req, res) => {
          // http-proxy hands a Socket instead of a response for upgrades; there are none here.
          if ('headersSent' in res) sendError(res as Response, 502, 'upstream failed');
        },
      },
    }),
  );
  // express.json() rejects bad JSON and oversize bodies by throwing: answer in the envelope.
  const onError: ErrorRequestHandler = (error: { status?: number; message?: string }, _req, res, _next) => {
    sendError(res, error.status ?? 500, error.status ? String(error.message) : 'internal error');
  };
  app.use(onError);
  return {
    app,
    close: async (server) => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

function main() {
  runForwarderCli('hpm-forwarder', (upstreams, model) => {
    const server = createServer(createHpmForwarder(upstreams, model).app);
    server.keepAliveTimeout = 30_000;
    return server;
  });
}

if (import.meta.url === `file://${process.argv[1]}`) main();
