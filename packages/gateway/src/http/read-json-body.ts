import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '@ai-lb/shared';

/**
 * Reads the request body once, bounded by MAX_BODY_BYTES, and parses it once. A declared
 * Content-Length over the limit is rejected before a byte is read; a body that grows past
 * it while streaming (chunked, or a lying Content-Length) is rejected as soon as it does.
 * A body that does not arrive whole within `timeoutMs` (REQUEST_TIMEOUT_SECS: a slow or
 * stuck client) is a 408 and the connection is closed — Node's own requestTimeout (300 s)
 * would hold the request far longer. Bytes that are not UTF-8 are a 400: decoding would
 * silently turn them into U+FFFD and forward a prompt the client never wrote.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number, timeoutMs: number): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const raw = await readRaw(req, maxBytes, timeoutMs);
  if (raw.length === 0) throw new GatewayError('invalid_json', 'the request body is empty: a JSON object is required');
  if (!isUtf8(raw)) throw new GatewayError('invalid_json', 'the request body is not valid UTF-8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new GatewayError('invalid_json', `the request body is not valid JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new GatewayError('invalid_json', 'the request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

function readRaw(req: IncomingMessage, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      cleanup();
      req.pause();
      reject(
        new GatewayError('request_timeout', `the request body did not arrive within ${timeoutMs} ms`, {
          headers: { connection: 'close' },
        }),
      );
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        // Stop reading; the 413 goes out with Connection: close (error middleware), so the
        // rest of an oversized upload is never buffered.
        req.pause();
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new GatewayError('invalid_request', 'the request body could not be read', { cause: error }));
    };
    const onClose = () => {
      cleanup();
      reject(new GatewayError('invalid_request', 'the client closed the connection while sending the body'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function tooLarge(maxBytes: number): GatewayError {
  return new GatewayError('body_too_large', `the request body exceeds MAX_BODY_BYTES (${maxBytes} bytes)`, {
    headers: { connection: 'close' },
  });
}
