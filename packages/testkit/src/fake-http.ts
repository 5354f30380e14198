/** Small writers the fake's surface answers share: JSON, SSE, NDJSON and each API's error format. */
import type { ServerResponse } from 'node:http';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

export function startEventStream(res: ServerResponse) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
}

export function startNdjson(res: ServerResponse) {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  res.flushHeaders();
}

/** One SSE event; `event` adds the `event:` line that Responses and Messages streams carry. */
export function sseEvent(data: unknown, event?: string): string {
  return `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
}

/**
 * What a surface handler answers, written by one writer so that the stream faults (cut,
 * stall) work alike on every surface: a JSON body, a stream (SSE events or NDJSON lines,
 * written one by one), or bytes (audio).
 */
export type FakeAnswer =
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'stream'; contentType: string; events: string[] }
  | { kind: 'bytes'; status: number; contentType: string; chunks: Buffer[] };

export const json = (body: unknown, status = 200): FakeAnswer => ({ kind: 'json', status, body });
export const sseStream = (events: string[]): FakeAnswer => ({ kind: 'stream', contentType: 'text/event-stream', events });

/** The error shapes of the APIs the fakes speak. */
export type ErrorFormat = 'openai' | 'anthropic' | 'ollama';

export function errorBody(format: ErrorFormat, status: number, message: string): unknown {
  if (format === 'ollama') return { error: message };
  if (format === 'anthropic') {
    const type =
      status === 429 ? 'rate_limit_error' : status === 503 ? 'overloaded_error' : status >= 500 ? 'api_error' : 'invalid_request_error';
    return { type: 'error', error: { type, message } };
  }
  return { error: { message, type: status < 500 ? 'invalid_request_error' : 'server_error', param: null, code: `fake_${status}` } };
}

export function sendError(res: ServerResponse, format: ErrorFormat, status: number, message: string, headers: Record<string, string> = {}) {
  sendJson(res, status, errorBody(format, status, message), headers);
}

export const FAKE_PIECES = ['Hello', ' from', ' fake'];
export const FAKE_TEXT = FAKE_PIECES.join('');
export const FAKE_USAGE = { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 };

/**
 * Arguments for a canned tool call, filled from the tool's JSON schema (strings "fake",
 * numbers 1, booleans true), so every tool a test declares gets a plausible call.
 */
export function cannedArguments(parameters: unknown): Record<string, unknown> {
  const properties = (parameters as { properties?: Record<string, { type?: unknown }> } | null)?.properties ?? {};
  const args: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(properties)) {
    const type = Array.isArray(schema?.type) ? schema.type[0] : schema?.type;
    args[name] = type === 'number' || type === 'integer' ? 1 : type === 'boolean' ? true : type === 'string' ? 'fake' : null;
  }
  return args;
}

/**
 * A request body as the fake reads it: JSON (an empty body is {}), or the fields of a
 * multipart form (audio uploads), parsed by the platform's own FormData; a file field
 * becomes {"name","size","type"}.
 */
export async function parseRequestBody(raw: Buffer, contentType: string | undefined): Promise<Record<string, unknown>> {
  if (!contentType?.startsWith('multipart/form-data')) return JSON.parse(raw.toString() || '{}') as Record<string, unknown>;
  const form = await new Response(Uint8Array.from(raw), { headers: { 'content-type': contentType } }).formData();
  const fields: Record<string, unknown> = {};
  for (const [name, value] of form) {
    fields[name] = typeof value === 'string' ? value : { name: value.name, size: value.size, type: value.type };
  }
  return fields;
}

/**
 * How many of each recorded header the fake keeps. A fake in front of a load (the bench
 * sends millions of requests) must not grow without bound: every kept string outlives the
 * young generation, and the fake's collections would then cost whatever sends it headers
 * (the gateway sends x-request-id, a bare forwarder does not) more than the rest.
 */
export const RECORDED_HEADERS_KEPT = 256;

/** Appends `value`, dropping the oldest entries once there are twice RECORDED_HEADERS_KEPT. */
export function record(list: string[], value: string): void {
  list.push(value);
  if (list.length >= 2 * RECORDED_HEADERS_KEPT) list.splice(0, list.length - RECORDED_HEADERS_KEPT);
}
