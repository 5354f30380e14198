import { AttemptError } from './attempt-error.ts';

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const ERROR_KEY = Buffer.from('"error"');

/**
 * A 200 non-stream answer is passed on only when it looks like an answer: a JSON object,
 * and not an error reported with status 200 (some servers do that). The check is
 * structural, not a parse: the first and last non-blank bytes must be braces (catches
 * HTML, plain text and truncated bodies), and only a body whose first key is "error" is
 * parsed to be sure. Parsing every answer would cost CPU per request on large embedding
 * responses, for nothing a client would not notice itself. Returns the failure, or null.
 */
export function checkJsonAnswer(body: Buffer): AttemptError | null {
  const first = skipBlank(body, 0, 1);
  const last = skipBlank(body, body.length - 1, -1);
  if (first === -1 || body[first] !== OPEN_BRACE || body[last] !== CLOSE_BRACE) {
    return new AttemptError('AI_LB_BAD_RESPONSE', 'the upstream answered 200 with a body that is not a JSON object');
  }
  const key = skipBlank(body, first + 1, 1);
  if (key === -1 || !body.subarray(key, key + ERROR_KEY.length).equals(ERROR_KEY)) return null;
  let error: unknown;
  try {
    error = (JSON.parse(body.toString('utf8')) as { error?: unknown }).error;
  } catch {
    return new AttemptError('AI_LB_BAD_RESPONSE', 'the upstream answered 200 with a body that is not valid JSON');
  }
  if (error === null || error === undefined) return null;
  const message = typeof error === 'string' ? error : (error as { message?: unknown }).message;
  return new AttemptError(
    'AI_LB_ERROR_EVENT',
    `the upstream answered 200 with an error: ${typeof message === 'string' ? message.slice(0, 500) : 'no message'}`,
  );
}

/** Index of the first byte from `from` (walking by `step`) that is not JSON whitespace, or -1. */
function skipBlank(body: Buffer, from: number, step: 1 | -1): number {
  for (let i = from; i >= 0 && i < body.length; i += step) {
    const byte = body[i];
    if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) return i;
  }
  return -1;
}
