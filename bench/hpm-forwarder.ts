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
import { Agent, type Server } from 'node:http';
import { parseArgs } from 'node:util';
import express, { type ErrorRequestHandler, type Request, type Response } from 'express';
import { createProxyMiddleware, fixRequestBody } from 'http-proxy-middleware';

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

function sendError(res: Response, status: number, message: string) {
  if (res.headersSent || res.destroyed) return;
  const type = status >= 500 ? 'server_error' : 'invalid_request_error';
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message, type, param: null, code: null } }));
}

function main() {
  const { values } = parseArgs({
    options: {
      upstreams: { type: 'string', default: '' },
      model: { type: 'string', default: 'bench-model' },
      port: { type: 'string', default: '0' },
    },
  });
  let forwarder: HpmForwarder;
  try {
    forwarder = createHpmForwarder(values.upstreams!.split(',').filter(Boolean), values.model!);
  } catch (error) {
    process.stderr.write(`hpm-forwarder: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const server = forwarder.app.listen(Number(values.port), '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    process.stdout.write(JSON.stringify({ port, pid: process.pid }) + '\n');
  });
  server.keepAliveTimeout = 30_000;
  // exit (not kill) on SIGTERM, so `--cpu-prof` can write its profile.
  process.on('SIGTERM', () => process.exit(0));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
