/**
 * A fake LLM server, run as its own process by tests and the benchmark:
 *
 *   node --import tsx fake-llm-server.ts --kind ollama --models llama3,qwen --slots 4
 *
 * prints {"port":N,"pid":P} on its first stdout line when it listens. What it answers on
 * discovery endpoints per server kind lives in fake-kinds.ts (recorded real shapes); which
 * API routes each kind serves, and how it refuses the others, in fake-surfaces.ts; how
 * it answers inference requests, including injected faults, in fake-inference.ts.
 * /__fake/* is its control surface for tests: stats and runtime reconfiguration.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { discoveryPaths, discoveryResponse, FAULT_KINDS, type FakeKind } from './fake-kinds.ts';
import { record } from './fake-http.ts';
import { handleInference } from './fake-inference.ts';
import { findEndpoint, refusal } from './fake-surfaces.ts';

export interface FakeServerOptions {
  kind: FakeKind;
  models: string[];
  /** Slots the server reports (llama.cpp /slots, /props); also its own concurrency limit when enforceSlots. */
  slots: number;
  /** Delay before answering an inference request (ms). */
  latencyMs: number;
  /** Extra response header on every answer, e.g. to impersonate an ai-lb gateway. */
  extraHeaders: Record<string, string>;
  /** Set through /__fake/config: every inference request fails this way ("500", "503", "reset", "hang"); null heals. */
  failMode?: string | null;
  /** Set through /__fake/config: "engine" answers non-stream chat in real engines' shapes (fake-answer-shapes.ts). */
  answerShape?: 'flat' | 'engine';
}

export interface FakeServerStats {
  requests: number;
  inflight: number;
  peakInflight: number;
  byPath: Record<string, number>;
  byModel: Record<string, number>;
  /** Authorization headers seen on inference requests (for key-forwarding tests); at least the latest RECORDED_HEADERS_KEPT (fake-http.ts). */
  authorizations: string[];
  /** Authorization headers seen on discovery (GET) requests: the monitor's probes; at least the latest RECORDED_HEADERS_KEPT (fake-http.ts). */
  discoveryAuthorizations: string[];
  /** x-request-id headers seen on inference requests; at least the latest RECORDED_HEADERS_KEPT (fake-http.ts). */
  requestIds: string[];
  /** W3C traceparent headers seen on inference requests (tracing tests); at least the latest RECORDED_HEADERS_KEPT (fake-http.ts). */
  traceparents: string[];
  /** Inference requests aborted by the client before they were answered. */
  aborted: number;
}

export function createFakeLlmServer(options: FakeServerOptions) {
  const stats: FakeServerStats = {
    requests: 0,
    inflight: 0,
    peakInflight: 0,
    byPath: {},
    byModel: {},
    authorizations: [],
    discoveryAuthorizations: [],
    requestIds: [],
    traceparents: [],
    aborted: 0,
  };

  const server = createServer(async (req, res) => {
    for (const [name, value] of Object.entries(options.extraHeaders)) res.setHeader(name, value);
    const path = (req.url ?? '/').split('?')[0];
    stats.byPath[path] = (stats.byPath[path] ?? 0) + 1;
    try {
      if (path.startsWith('/__fake/')) return await handleControl(path, req, res);
      const endpoint = findEndpoint(options.kind, req.method, path);
      if (endpoint) return await handleInference(req, res, { options, stats }, endpoint);
      const faultKind = (FAULT_KINDS as readonly string[]).includes(options.kind);
      if (req.method === 'POST' && faultKind) return await handleInference(req, res, { options, stats });
      if (req.headers.authorization) record(stats.discoveryAuthorizations, req.headers.authorization);
      const discovery =
        faultKind || req.method === 'GET' || req.method === 'HEAD' ? discoveryResponse(options.kind, path, options) : undefined;
      // A route the kind does not serve is refused the way that server refuses it (fake-surfaces.ts).
      const answer = discovery ?? refusal(options.kind, req.method ?? 'GET', path, discoveryPaths(options.kind));
      if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs)); // the 'hang' fault kind
      res.writeHead(answer.status, { 'content-type': answer.contentType });
      res.end(answer.body);
    } catch (error) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(error));
    }
  });
  // Keep-alive like real servers, so pooled clients reuse connections.
  server.keepAliveTimeout = 30_000;

  async function handleControl(path: string, req: IncomingMessage, res: ServerResponse) {
    if (path === '/__fake/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(stats));
      return;
    }
    if (path === '/__fake/reset') {
      Object.assign(stats, {
        requests: 0,
        peakInflight: stats.inflight,
        byPath: {},
        byModel: {},
        authorizations: [],
        discoveryAuthorizations: [],
        requestIds: [],
        traceparents: [],
        aborted: 0,
      });
      res.writeHead(204).end();
      return;
    }
    if (path === '/__fake/config' && req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      Object.assign(options, JSON.parse(Buffer.concat(chunks).toString() || '{}'));
      res.writeHead(204).end();
      return;
    }
    res.writeHead(404).end();
  }

  return { server, stats, options };
}

function main() {
  const { values } = parseArgs({
    options: {
      kind: { type: 'string', default: 'openai' },
      models: { type: 'string', default: 'fake-model' },
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      slots: { type: 'string', default: '4' },
      'latency-ms': { type: 'string', default: '0' },
      header: { type: 'string', multiple: true, default: [] },
    },
  });
  const extraHeaders: Record<string, string> = {};
  for (const h of values.header ?? []) {
    const i = h.indexOf(':');
    extraHeaders[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  const { server } = createFakeLlmServer({
    kind: values.kind as FakeKind,
    models: values.models!.split(',').filter(Boolean),
    slots: Number(values.slots),
    latencyMs: Number(values['latency-ms']),
    extraHeaders,
  });
  server.listen(Number(values.port), values.host, () => {
    const { port } = server.address() as { port: number };
    process.stdout.write(`${JSON.stringify({ port, pid: process.pid })}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
