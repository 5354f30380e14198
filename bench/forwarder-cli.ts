/**
 * What the two reference forwarders (node floor, http-proxy-middleware) share: the JSON
 * error they answer with, and their command line — `--upstreams host:port,… --model M
 * --port P`, listen on 127.0.0.1, print {"port":N,"pid":P} once listening, exit on SIGTERM —
 * and the floors' request side (read the body, rewrite `model`). Those live here, not in
 * node-floor.ts: a bundle of stream-floor.ts that imports node-floor.ts also runs its `main`
 * (both modules share the bundle's import.meta.url) and would answer on the node floor's port.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';

const MAX_BODY_BYTES = 10 * 1024 * 1024;

export function readBody(req: IncomingMessage, res: ServerResponse, then: (body: Buffer) => void) {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) return void chunks.push(chunk);
    if (res.headersSent) return;
    // Answer first, then drop the connection: an endless body must not be read forever.
    res.setHeader('connection', 'close');
    sendError(res, 413, `body over ${MAX_BODY_BYTES} bytes`);
    res.once('finish', () => req.destroy());
  });
  req.on('end', () => {
    if (size <= MAX_BODY_BYTES) then(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  });
  req.on('error', () => res.destroy());
}

/** The one JSON round trip every gateway does: parse, resolve the model, serialize. */
export function rewriteModel(body: Buffer, model: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const request = parsed as { model?: unknown };
  if (typeof request.model !== 'string' || request.model.toLowerCase() === 'auto') request.model = model;
  return JSON.stringify(request);
}

/** An OpenAI-style error envelope, unless the answer has already begun. */
export function sendError(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent || res.destroyed) return;
  const type = status >= 500 ? 'server_error' : 'invalid_request_error';
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message, type, param: null, code: null } }));
}

/** `create` builds the forwarder from the parsed flags and returns its (not yet listening) server. */
export function runForwarderCli(name: string, create: (upstreams: string[], model: string) => Server): void {
  const { values } = parseArgs({
    options: {
      upstreams: { type: 'string', default: '' },
      model: { type: 'string', default: 'bench-model' },
      port: { type: 'string', default: '0' },
    },
  });
  let server: Server;
  try {
    server = create(values.upstreams!.split(',').filter(Boolean), values.model!);
  } catch (error) {
    process.stderr.write(`${name}: ${(error as Error).message}\n`);
    process.exit(2);
  }
  server.listen(Number(values.port), '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    process.stdout.write(`${JSON.stringify({ port, pid: process.pid })}\n`);
  });
  // exit (not kill) on SIGTERM, so `--cpu-prof` can write its profile.
  process.on('SIGTERM', () => process.exit(0));
}
