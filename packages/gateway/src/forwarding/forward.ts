import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { NodeId } from '@ai-lb/shared';
import type { AttemptAbort } from './attempt-abort.ts';

export interface UpstreamHeaderPolicy {
  /** NODE_API_KEYS: node -> key, sent as the bearer to that node only. */
  nodeApiKeys: ReadonlyMap<string, string>;
  /** GATEWAY_API_KEYS is set: the client's Authorization is the gateway key, never forwarded. */
  gatewayKeysSet: boolean;
}

/**
 * The headers an upstream sees. A short allowlist: hop-by-hop headers, cookies and
 * accept-encoding never go (a compressed event stream could not be checked event by event).
 */
export function upstreamHeaders(
  client: IncomingHttpHeaders,
  node: NodeId,
  requestId: string,
  policy: UpstreamHeaderPolicy,
): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: typeof client.accept === 'string' ? client.accept : 'application/json, text/event-stream',
    'x-request-id': requestId,
  };
  if (typeof client['user-agent'] === 'string') headers['user-agent'] = client['user-agent'];
  const nodeKey = policy.nodeApiKeys.get(node.toLowerCase());
  if (nodeKey !== undefined) headers.authorization = `Bearer ${nodeKey}`;
  else if (!policy.gatewayKeysSet && typeof client.authorization === 'string') headers.authorization = client.authorization;
  return headers;
}

/** Sends one attempt's request over the node's pool; the abort switch bounds and cancels it. */
export function sendUpstream(
  pool: Dispatcher,
  request: { path: string; body: Buffer; headers: Record<string, string> },
  abort: AttemptAbort,
): Promise<Dispatcher.ResponseData> {
  return pool.request({
    method: 'POST',
    path: request.path,
    headers: request.headers,
    body: request.body,
    // Not an AbortSignal, but what undici accepts as one (see AttemptAbort).
    signal: abort.signal as unknown as AbortSignal,
  });
}

/**
 * Reads a (non-stream or error) response body whole, bounded in size. Plain 'data'/'end'
 * listeners rather than `for await`: the async iterator costs a promise and an iterator
 * step per chunk (issue 6). An abort destroys the body, which ends here as 'error'.
 */
export function readBodyLimited(body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        body.destroy();
        return resolve(null);
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (error: unknown) => {
      cleanup();
      reject(error);
    };
    const onClose = () => {
      // Destroyed without an error (cannot come from undici's aborts, which carry a reason).
      cleanup();
      reject(new Error('the upstream body was closed before it ended'));
    };
    const cleanup = () => {
      body.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      // A late error after we settled must not be unhandled.
      body.on('error', noop);
    };
    body.on('data', onData).once('end', onEnd).on('error', onError).once('close', onClose);
  });
}

function noop(): void {}
