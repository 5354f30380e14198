import busboy from 'busboy';
import { GatewayError } from '@ai-lb/shared';
import { closingQuote } from '../http/exchange.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * The body that goes upstream: the client's bytes, with only the top-level `model` value
 * replaced when resolution changed it (a sentinel, an alias, LM_MODEL for a body without
 * one). Never parsed and re-serialised: that would turn `"seed": 12345678901234567890` into
 * 12345678901234567000 and `1e999` into null, and reorder nothing the client can see but
 * everything a cache key or a signature can. `requested` is the value of `raw`'s own
 * `model` key (undefined when it has none).
 */
export function withModel(raw: Buffer, requested: unknown, model: string): Buffer {
  if (requested === model) return raw;
  const value = JSON.stringify(model);
  const span = topLevelValueSpan(raw, 'model');
  if (span !== null) return spliced(raw, span.start, span.end, value);
  // No `model` key: add it first, so the object stays valid whatever follows.
  const open = raw.indexOf(OPEN_BRACE) + 1;
  let next = open;
  while (isBlank(raw[next])) next++;
  return spliced(raw, open, open, `"model":${value}${raw[next] === CLOSE_BRACE ? '' : ','}`);
}

/** `bytes` with [start, end) replaced by `text`, in one new buffer (nothing decoded). */
function spliced(bytes: Buffer, start: number, end: number, text: string): Buffer {
  const length = Buffer.byteLength(text);
  const out = Buffer.allocUnsafe(bytes.length - (end - start) + length);
  bytes.copy(out, 0, 0, start);
  out.write(text, start);
  bytes.copy(out, start + length, end);
  return out;
}

/**
 * Where the value of a top-level key stands in a JSON object's bytes, [start, end); the last
 * occurrence when the key repeats (JSON.parse keeps the last one). Keys are compared decoded,
 * so "mod\u0065l" is "model". Null when the key is absent. Bytes, not a decoded string: no
 * UTF-8 byte of a multi-byte character is a quote, backslash, brace or bracket, so a large
 * body is neither decoded nor encoded again to change one value.
 */
export function topLevelValueSpan(bytes: Buffer, key: string): { start: number; end: number } | null {
  let depth = 0;
  let expectKey = false;
  let valueStart = -1;
  let span: { start: number; end: number } | null = null;
  const close = (at: number) => {
    if (depth === 1 && valueStart !== -1) {
      span = { start: valueStart, end: trimmedEnd(bytes, at) };
      valueStart = -1;
    }
  };
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === QUOTE) {
      const end = closingQuote(bytes, i);
      if (end === -1) break;
      if (depth === 1 && expectKey) {
        expectKey = false;
        if (keyIs(bytes, i, end, key)) {
          let j = bytes.indexOf(COLON, end + 1) + 1;
          while (isBlank(bytes[j])) j++;
          valueStart = j;
          i = j - 1;
          continue;
        }
      }
      i = end;
    } else if (c === OPEN_BRACE || c === 0x5b /* [ */) {
      depth++;
      if (depth === 1) expectKey = c === OPEN_BRACE;
    } else if (c === CLOSE_BRACE || c === 0x5d /* ] */) {
      close(i);
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      close(i);
      expectKey = true;
    }
  }
  return span;
}

/**
 * Whether the key string between the quotes at `open` and `close` is `key` (ASCII). Compared
 * as bytes; only a key with an escape in it is decoded, with JSON.parse.
 */
function keyIs(bytes: Buffer, open: number, close: number, key: string): boolean {
  for (let i = open + 1; i < close; i++) {
    if (bytes[i] === BACKSLASH) return JSON.parse(bytes.toString('utf8', open, close + 1)) === key;
  }
  if (close - open - 1 !== key.length) return false;
  for (let i = 0; i < key.length; i++) if (bytes[open + 1 + i] !== key.charCodeAt(i)) return false;
  return true;
}

function trimmedEnd(bytes: Buffer, at: number): number {
  let end = at;
  while (end > 0 && isBlank(bytes[end - 1])) end--;
  return end;
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * The `model` field of a multipart/form-data upload (audio transcriptions), read with
 * busboy: the fields, never the files (they pass through as bytes). Undefined when absent.
 */
export function multipartModel(raw: Buffer, contentType: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: { 'content-type': contentType }, limits: { fieldSize: 4096, fields: 64 } });
    } catch (error) {
      return reject(invalidForm(`the multipart body could not be read: ${(error as Error).message}`));
    }
    let model: string | undefined;
    parser.on('field', (name, value) => {
      if (name === 'model') model = value;
    });
    parser.on('file', (_name, file) => file.resume());
    parser.on('error', (error) => reject(invalidForm(`the multipart body is malformed: ${(error as Error).message}`)));
    parser.on('close', () => resolve(model));
    parser.end(raw);
  });
}

/**
 * The upload with its `model` field's value replaced (a sentinel or alias resolved); every
 * other byte as the client sent it. The field is found between its part's headers and the
 * next boundary.
 */
export function withMultipartModel(raw: Buffer, contentType: string, model: string): Buffer {
  const match = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (match === null) throw invalidForm('the multipart body has no boundary');
  const dashes = Buffer.from(`--${match[1] ?? match[2]}`);
  const next = Buffer.from(`\r\n--${match[1] ?? match[2]}`);
  for (let at = raw.indexOf(dashes); at !== -1; ) {
    const afterBoundary = at + dashes.length;
    if (raw[afterBoundary] === 0x2d && raw[afterBoundary + 1] === 0x2d) break; // the closing --boundary--
    const headersEnd = raw.indexOf('\r\n\r\n', afterBoundary);
    if (headersEnd === -1) break;
    const valueEnd = raw.indexOf(next, headersEnd + 4);
    if (valueEnd === -1) break;
    const headers = raw.toString('latin1', afterBoundary, headersEnd);
    if (/\bname="model"/i.test(headers) && !/\bfilename=/i.test(headers)) {
      return Buffer.concat([raw.subarray(0, headersEnd + 4), Buffer.from(model), raw.subarray(valueEnd)]);
    }
    at = valueEnd + 2;
  }
  throw invalidForm("the multipart body has no 'model' field");
}

function invalidForm(message: string): GatewayError {
  return new GatewayError('invalid_request', message, { param: 'model' });
}
