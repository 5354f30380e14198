/**
 * What the two reference forwarders (node floor, http-proxy-middleware) share: the JSON
 * error they answer with, and their command line — `--upstreams host:port,… --model M
 * --port P`, listen on 127.0.0.1, print {"port":N,"pid":P} once listening, exit on SIGTERM.
 */
import type { Server, ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';

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
