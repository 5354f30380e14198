/**
 * The only way probes talk to a target: one GET (or the surface probe's POST), bounded in time (connect + headers +
 * body all within PROBE_TIMEOUT_MS) and in size (a body over the cap is cut off, never
 * buffered). Connections are not kept alive: a scan touches thousands of targets once
 * per interval, so pooled sockets would only pile up.
 */
import { connect } from 'node:net';
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { normalizeNodeId, originOf, readBounded, type NodeId } from '@ai-lb/shared';
import { ProbeError, toProbeError } from './probe-error.ts';
import type { ScanTarget } from '../scan/targets.ts';

/** Big enough for an LM Studio or Ollama box with hundreds of models; a /metrics page is ~100 KiB. */
export const DEFAULT_MAX_PROBE_BODY_BYTES = 4 * 1024 * 1024;

export interface ProbeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Request sent -> body fully read. */
  latencyMs: number;
}

export interface ProbeClient {
  /**
   * Resolves when the target accepts a TCP connection, rejects with a ProbeError
   * (refused, timeout, …) when it does not. A plain socket costs a fraction of an HTTP
   * client's per-origin setup, and most scanned ports are closed.
   */
  open(target: ScanTarget): Promise<void>;
  /**
   * One GET within PROBE_TIMEOUT_MS; `deadline` (the whole target's) may cut it shorter.
   * Either way the failure is a ProbeError with reason timeout.
   */
  get(target: ScanTarget, path: string, deadline?: AbortSignal): Promise<ProbeResponse>;
  /** A POST with a JSON body, same bounds as get (the surface probe's route checks). */
  post(target: ScanTarget, path: string, json: unknown, deadline?: AbortSignal): Promise<ProbeResponse>;
  close(): Promise<void>;
  /** PROBE_TIMEOUT_MS: the bound of one connect or one GET. */
  readonly timeoutMs: number;
}

export interface ProbeClientOptions {
  timeoutMs: number;
  maxBodyBytes?: number;
  /**
   * NODE_API_KEYS: a server started with an API key (vLLM --api-key, LM Studio auth)
   * answers /v1/models with 401 without it, and would never be discovered.
   */
  apiKeys?: ReadonlyMap<NodeId, string>;
}

export function createProbeClient(options: ProbeClientOptions): ProbeClient {
  const { timeoutMs } = options;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_PROBE_BODY_BYTES;
  const apiKeys = new Map([...(options.apiKeys ?? [])].map(([node, key]) => [normalizeNodeId(node), key]));
  const agent = new Agent({ connect: { timeout: timeoutMs }, keepAliveTimeout: 1_000 });

  const get = (target: ScanTarget, path: string, deadline?: AbortSignal) => send(target, path, undefined, deadline);
  const post = (target: ScanTarget, path: string, json: unknown, deadline?: AbortSignal) => send(target, path, json, deadline);

  async function send(target: ScanTarget, path: string, json: unknown, deadline?: AbortSignal): Promise<ProbeResponse> {
    const started = performance.now();
    const controller = new AbortController();
    const abort = () => controller.abort();
    const timer = setTimeout(abort, timeoutMs);
    deadline?.addEventListener('abort', abort, { once: true });
    if (deadline?.aborted) abort();
    try {
      const response = await request(`${originOf(target)}${path}`, {
        method: json === undefined ? 'GET' : 'POST',
        body: json === undefined ? undefined : JSON.stringify(json),
        dispatcher: agent,
        signal: controller.signal,
        reset: true, // "connection: close": no keep-alive (see the header comment)
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        headers: requestHeaders(apiKeys.get(target.node), json !== undefined),
      });
      return await readProbeResponse(response, maxBodyBytes, path, started);
    } catch (error) {
      // An abort mid-body surfaces as a closed stream: it is still our timeout, not a reset.
      if (deadline?.aborted) throw new ProbeError('timeout', `${path}: cut off at the target's probe deadline`, { cause: error });
      if (controller.signal.aborted)
        throw new ProbeError('timeout', `${path}: no complete answer within ${timeoutMs} ms`, { cause: error });
      throw toProbeError(error, false);
    } finally {
      clearTimeout(timer);
      deadline?.removeEventListener('abort', abort);
    }
  }

  function open(target: ScanTarget): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: target.host, port: target.port });
      socket.setTimeout(timeoutMs);
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('timeout', () => {
        socket.destroy();
        reject(toProbeError(new Error('connect timeout'), true));
      });
      socket.once('error', (error) => reject(toProbeError(error, false)));
    });
  }

  return { open, get, post, close: () => agent.close(), timeoutMs };
}

function requestHeaders(apiKey: string | undefined, jsonBody = false): Record<string, string> {
  const headers: Record<string, string> = { accept: 'application/json, text/plain;q=0.9, */*;q=0.1', 'user-agent': 'ai-lb-monitor' };
  if (jsonBody) headers['content-type'] = 'application/json';
  if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`;
  return headers;
}

/** An answer whole: refused at once when its declared length is over the cap, else read bounded. */
export async function readProbeResponse(
  response: Dispatcher.ResponseData,
  maxBodyBytes: number,
  path: string,
  startedAt: number,
): Promise<ProbeResponse> {
  const declared = Number(response.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBodyBytes) {
    response.body.destroy();
    throw new ProbeError('too_large', `${path}: body of ${declared} bytes is over the ${maxBodyBytes}-byte cap`);
  }
  const body = await readBoundedBody(response.body, maxBodyBytes, path);
  return { status: response.statusCode, headers: response.headers, body, latencyMs: performance.now() - startedAt };
}

/**
 * Reads a body as UTF-8 text, stopping (and destroying the stream, which closes the
 * socket) as soon as it passes maxBytes: a server that streams forever costs at most
 * maxBytes of memory.
 */
export async function readBoundedBody(body: Readable, maxBytes: number, what = 'body'): Promise<string> {
  const read = await readBounded(body, { maxBytes });
  if (read.kind === 'too_large') throw new ProbeError('too_large', `${what}: body over the ${maxBytes}-byte cap`);
  if (read.kind !== 'complete') throw new ProbeError('reset', `${what}: the connection closed before the body ended`);
  return read.body.toString('utf8');
}
