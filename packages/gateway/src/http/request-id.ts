import { randomUUID } from 'node:crypto';

/** Visible ASCII only, no spaces, at most 128: safe to log, echo and forward as a header. */
const SANE_REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * The request's own x-request-id when it is a sane token, else a fresh one. Anything with
 * CR/LF, spaces or control characters, or longer than 128, is replaced, never echoed:
 * it would end up in upstream requests and log lines.
 */
export function pickRequestId(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && SANE_REQUEST_ID.test(value) ? value : randomUUID();
}
