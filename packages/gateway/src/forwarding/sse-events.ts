import { isUtf8 } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';
import { AttemptError } from './attempt-error.ts';

/**
 * The most one upstream SSE event may hold, in characters. An LLM stream event is one
 * chunk of an answer: a few tokens of delta, a tool call's arguments, a usage block, or
 * logprobs with top_logprobs for a few tokens; even the big ones stay in the low tens of
 * KiB. 256 KiB leaves ten times that, while bounding what one broken or hostile upstream
 * can make the gateway hold for its stream (a thousand such streams: 256 MiB, not 4 GiB).
 */
export const DEFAULT_MAX_EVENT_CHARS = 256 * 1024;

const LF = 10;
const CR = 13;

/**
 * Splits an upstream event stream into whole SSE events (text up to a blank line) and
 * says what each one is. Pure: no I/O, so the byte-level cases are unit-tested directly.
 *
 * Each byte is looked at a constant number of times: a chunk is decoded, normalised and
 * searched for the blank line on its own, and the event it continues is kept as a list of
 * pieces that is joined once, when the event ends. Rescanning everything pending on every
 * chunk made an upstream that drips one endless event cost the gateway quadratic CPU.
 */
export class SseEventSplitter {
  private readonly decoder = new StringDecoder('utf8');
  /** The unfinished event, LF-normalised, in the pieces it arrived in. */
  private parts: string[] = [];
  private partsChars = 0;
  /** The unfinished event ends with a line end: a chunk that starts with "\n" ends it. */
  private atLineStart = false;
  /** The last chunk ended with "\r": a "\n" opening the next one is the rest of that CRLF. */
  private afterCr = false;
  /**
   * The events of the last push are exactly that chunk's bytes, in order (no carried-in or
   * left-over text, no CR normalised, no blank line skipped): a relay may write the chunk
   * itself instead of encoding the events again.
   */
  exact = false;
  /** The last push ended at an event boundary: nothing is carried into the next. */
  private cleanEnd = true;
  /** The last chunk ended in an ASCII byte: the decoder holds no part of a character. */
  private decoderEmpty = true;

  /** An upstream that never ends an event must not make the gateway buffer without bound. */
  constructor(private readonly maxEventChars = DEFAULT_MAX_EVENT_CHARS) {}

  /**
   * Nothing of an event is pending: a chunk that is whole events may bypass push() (see
   * plainContentEvents) without changing what later chunks split into.
   */
  get betweenEvents(): boolean {
    return this.partsChars === 0 && !this.afterCr && this.decoderEmpty;
  }

  /** Whole events completed by this chunk, each normalised to end with "\n\n". */
  push(chunk: Buffer): string[] {
    if (chunk.length > 0) this.decoderEmpty = chunk[chunk.length - 1]! < 0x80;
    let text = this.decoder.write(chunk);
    const cleanStart = this.cleanEnd;
    this.exact = false;
    this.cleanEnd = false;
    // Only the first bytes of a multi-byte character: nothing to look at yet.
    if (text === '') return [];
    if (this.afterCr && text.charCodeAt(0) === LF) text = text.slice(1);
    this.afterCr = text.charCodeAt(text.length - 1) === CR;
    // Server-sent events allow CRLF and CR line ends; a trailing lone CR is already a line end,
    // and afterCr drops the LF that may follow it in the next chunk.
    const hasCr = text.includes('\r');
    if (hasCr) text = text.replace(/\r\n?/g, '\n');
    const events = this.split(text);
    // Invalid UTF-8 was decoded to U+FFFD: those bytes are not what the events say.
    this.exact = cleanStart && !hasCr && this.cleanEnd && events.length > 0 && isUtf8(chunk);
    return events;
  }

  /** What is left when the upstream ended: an event without its blank line, if any. */
  flush(): string | null {
    let rest = this.parts.join('') + this.decoder.end();
    this.parts = [];
    this.partsChars = 0;
    this.atLineStart = false;
    this.afterCr = false;
    this.cleanEnd = true;
    this.decoderEmpty = true;
    this.exact = false;
    let end = rest.length;
    while (end > 0 && rest.charCodeAt(end - 1) === LF) end--;
    rest = rest.slice(0, end);
    return rest.trim() === '' ? null : `${rest}\n\n`;
  }

  /** Sets cleanEnd when the text is whole events and nothing was skipped. */
  private split(text: string): string[] {
    const events: string[] = [];
    let start = 0;
    let skipped = false;
    if (this.partsChars === 0) {
      start = skipLineEnds(text, 0); // stray blank lines between events
      skipped = start > 0;
    } else if (this.atLineStart && text.charCodeAt(0) === LF) {
      // The blank line that ends the pending event fell across the chunk boundary.
      events.push(this.finish('\n'));
      start = skipLineEnds(text, 1);
      skipped = true;
    }
    for (;;) {
      const end = text.indexOf('\n\n', start);
      if (end === -1) break;
      events.push(this.finish(text.slice(start, end + 2)));
      start = skipLineEnds(text, end + 2);
      if (start > end + 2) skipped = true;
    }
    if (start < text.length) this.keep(text.slice(start));
    else this.cleanEnd = !skipped;
    return events;
  }

  /** The pending event plus its last piece, as one string; the size is checked first. */
  private finish(last: string): string {
    this.checkSize(last.length);
    const event = this.partsChars === 0 ? last : this.parts.join('') + last;
    this.parts = [];
    this.partsChars = 0;
    this.atLineStart = false;
    return event;
  }

  private keep(piece: string): void {
    this.checkSize(piece.length);
    this.parts.push(piece);
    this.partsChars += piece.length;
    this.atLineStart = piece.charCodeAt(piece.length - 1) === LF;
  }

  private checkSize(added: number): void {
    if (this.partsChars + added > this.maxEventChars) {
      throw new AttemptError('AI_LB_BAD_RESPONSE', `an upstream SSE event exceeded ${this.maxEventChars} characters`);
    }
  }
}

function skipLineEnds(text: string, from: number): number {
  let at = from;
  while (text.charCodeAt(at) === LF) at++;
  return at;
}

export type SseEventKind =
  /** A JSON data event: a chunk of the answer. */
  | 'data'
  /** `data: [DONE]`. */
  | 'done'
  /** A JSON data event carrying `error`: the upstream reports a failure in-band. */
  | 'error'
  /** Data that is not JSON: dropped and counted (SDK parsers would throw on it). */
  | 'invalid'
  /** Comments and fields without data (keep-alives): passed through, no content. */
  | 'other';

export interface SseEventInfo {
  kind: SseEventKind;
  /** A choice in this chunk carries finish_reason: the answer is complete. */
  finished: boolean;
  /** The parsed data of a JSON event (data and error kinds): read it instead of parsing again. */
  record?: Record<string, unknown>;
}

export function classifySseEvent(event: string): SseEventInfo {
  let data: string | null = null;
  for (const line of event.split('\n')) {
    if (!line.startsWith('data:')) continue;
    const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    data = data === null ? value : `${data}\n${value}`;
  }
  if (data === null) return { kind: 'other', finished: false };
  if (data.trim() === '[DONE]') return { kind: 'done', finished: true };
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return { kind: 'invalid', finished: false };
  }
  if (parsed === null || typeof parsed !== 'object') return { kind: 'invalid', finished: false };
  const record = parsed as { error?: unknown; choices?: Array<{ finish_reason?: unknown } | null> };
  if (record.error !== undefined && record.error !== null && record.choices === undefined) {
    return { kind: 'error', finished: false, record };
  }
  const finished = Array.isArray(record.choices) && record.choices.some((c) => c?.finish_reason != null);
  return { kind: 'data', finished, record };
}

const DATA_FIELD = Buffer.from('data:');
const EVENT_FIELD = Buffer.from('event:');
const TYPE_KEY = Buffer.from('type');
const OBJECT_KEY = Buffer.from('object');
/**
 * The event types a typed stream relays as plain, tokens all: Anthropic's (text, tool input,
 * thinking) and the Responses API's (text, tool arguments, reasoning).
 */
const PLAIN_TYPES = [
  'content_block_delta',
  'response.output_text.delta',
  'response.function_call_arguments.delta',
  'response.reasoning_text.delta',
  'response.reasoning_summary_text.delta',
].map((type) => Buffer.from(`"${type}"`));
const ERROR_KEY = Buffer.from('error');
const USAGE_KEY = Buffer.from('usage');
const FINISH_REASON_KEY = Buffer.from('finish_reason');
const NULL_WORD = Buffer.from('null');
const TRUE_WORD = Buffer.from('true');
const FALSE_WORD = Buffer.from('false');

/**
 * For a relay that reads no records: how many events `chunk` is when it is exactly one or more
 * whole plain OpenAI content chunks, 0 otherwise. Plain: each event is one line `data: {…}`
 * ending in a blank line, the object is JSON (RFC 8259, as JSON.parse accepts it) whose
 * `error`, `usage` and `finish_reason` keys, where it has them, are null, and no key holds a
 * \u escape (it could spell one of those); the chunk has no CR and is valid UTF-8. Such a
 * chunk says what its bytes say: content, no end of the answer, no error, no usage; it may be
 * written to the client as it is. Checked in one pass over the bytes: nothing decoded, no
 * string built. A chunk that is anything else goes through the splitter and classifySseEvent.
 */
export function plainContentEvents(chunk: Uint8Array): number {
  return plainEvents(chunk, false);
}

/**
 * plainContentEvents for streams whose events carry a `type` (TYPED_SSE: Anthropic Messages,
 * the Responses API): each event may also have an `event: <name>` line before its data (the
 * client gets it as it came; what the event means is read from the data), the data's
 * top-level `type`, where it has one, is a token's (PLAIN_TYPES) written without escapes,
 * and it has no top-level `object`. The types that begin or end the answer, report an error,
 * carry usage or name a response are never plain.
 */
export function plainTypedEvents(chunk: Uint8Array): number {
  return plainEvents(chunk, true);
}

function plainEvents(chunk: Uint8Array, typed: boolean): number {
  const end = chunk.length;
  if (end < 2 || chunk[end - 1] !== LF || chunk[end - 2] !== LF || chunk.indexOf(CR) !== -1 || !isUtf8(chunk)) return 0;
  const scan = new PlainScan(chunk, end, typed);
  let events = 0;
  let at = 0;
  while (at < end) {
    if (typed && startsWith(chunk, at, EVENT_FIELD)) {
      at = chunk.indexOf(LF, at) + 1;
      if (at === 0) return 0;
    }
    if (!startsWith(chunk, at, DATA_FIELD)) return 0;
    at += DATA_FIELD.length;
    if (chunk[at] === 32) at++;
    if (chunk[at] !== 123) return 0; // {
    scan.at = at;
    if (!scan.value(0)) return 0;
    at = scan.at;
    if (chunk[at] !== LF || chunk[at + 1] !== LF) return 0;
    at += 2;
    events++;
  }
  return events;
}

const MAX_DEPTH = 512;

/** `error`, `usage` or `finish_reason`: the keys whose value the relay must read. */
function decides(bytes: Uint8Array, key: number, length: number): boolean {
  if (length === 5) return startsWith(bytes, key, ERROR_KEY) || startsWith(bytes, key, USAGE_KEY);
  return length === FINISH_REASON_KEY.length && startsWith(bytes, key, FINISH_REASON_KEY);
}

function startsWith(bytes: Uint8Array, at: number, word: Uint8Array): boolean {
  if (at + word.length > bytes.length) return false;
  for (let i = 0; i < word.length; i++) if (bytes[at + i] !== word[i]) return false;
  return true;
}

/** Between JSON tokens on a data line: a line end would start another line of the event. */
function skipSpaces(bytes: Uint8Array, from: number, end: number): number {
  let at = from;
  while (at < end && (bytes[at] === 32 || bytes[at] === 9)) at++;
  return at;
}

/** One JSON value of a plain chunk, at `at`; false for anything not JSON and anything not plain. */
class PlainScan {
  at = 0;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly end: number,
    /** TYPED_SSE: the top-level `type` decides too (plainTypedEvents). */
    private readonly typed: boolean,
  ) {}

  value(depth: number): boolean {
    if (depth > MAX_DEPTH) return false;
    const { bytes } = this;
    this.at = skipSpaces(bytes, this.at, this.end);
    const c = bytes[this.at];
    if (c === 123) return this.object(depth);
    if (c === 91) return this.array(depth);
    if (c === 34) return this.string(true);
    if (c === 116) return this.word(TRUE_WORD);
    if (c === 102) return this.word(FALSE_WORD);
    if (c === 110) return this.word(NULL_WORD);
    return this.number();
  }

  private object(depth: number): boolean {
    const { bytes, end } = this;
    const typeDecides = this.typed && depth === 0;
    this.at = skipSpaces(bytes, this.at + 1, end);
    if (bytes[this.at] === 125) {
      this.at++;
      return true;
    }
    for (;;) {
      const key = this.at + 1;
      if (bytes[this.at] !== 34 || !this.string(false)) return false;
      const keyLength = this.at - 1 - key;
      this.at = skipSpaces(bytes, this.at, end);
      if (bytes[this.at] !== 58) return false; // :
      this.at++;
      if (decides(bytes, key, keyLength)) {
        // A key that ends the answer, reports an error or carries usage: plain only when null
        // (OpenAI and some engines send `"usage":null` in every chunk when usage was asked for).
        this.at = skipSpaces(bytes, this.at, end);
        if (!this.word(NULL_WORD)) return false;
      } else if (typeDecides && keyLength === TYPE_KEY.length && startsWith(bytes, key, TYPE_KEY)) {
        this.at = skipSpaces(bytes, this.at, end);
        if (!this.oneOf(PLAIN_TYPES)) return false;
      } else if (typeDecides && keyLength === OBJECT_KEY.length && startsWith(bytes, key, OBJECT_KEY)) {
        // A whole response (`"object":"response"`) names its id: the relay's observer reads it.
        return false;
      } else if (!this.value(depth + 1)) {
        return false;
      }
      this.at = skipSpaces(bytes, this.at, end);
      const c = bytes[this.at++];
      if (c === 125) return true;
      if (c !== 44) return false; // ,
      this.at = skipSpaces(bytes, this.at, end);
    }
  }

  private array(depth: number): boolean {
    const { bytes, end } = this;
    this.at = skipSpaces(bytes, this.at + 1, end);
    if (bytes[this.at] === 93) {
      this.at++;
      return true;
    }
    for (;;) {
      if (!this.value(depth + 1)) return false;
      this.at = skipSpaces(bytes, this.at, end);
      const c = bytes[this.at++];
      if (c === 93) return true;
      if (c !== 44) return false;
    }
  }

  /**
   * At the opening quote; ends after the closing one. `\uXXXX` only in values: a key spelled
   * with one could be `error` (Go's encoder, Ollama's, writes `<`, `>` and `&` in text that way).
   */
  private string(unicodeEscapes: boolean): boolean {
    const { bytes, end } = this;
    for (let at = this.at + 1; at < end; at++) {
      const c = bytes[at]!;
      if (c === 34) {
        this.at = at + 1;
        return true;
      }
      if (c < 32) return false;
      if (c !== 92) continue; // backslash
      const e = bytes[++at];
      if (e === 117 && unicodeEscapes) {
        if (!isHex(bytes[at + 1]) || !isHex(bytes[at + 2]) || !isHex(bytes[at + 3]) || !isHex(bytes[at + 4])) return false;
        at += 4;
      } else if (e !== 34 && e !== 92 && e !== 47 && e !== 98 && e !== 102 && e !== 110 && e !== 114 && e !== 116) {
        return false;
      }
    }
    return false;
  }

  private oneOf(words: readonly Uint8Array[]): boolean {
    for (const word of words) if (this.word(word)) return true;
    return false;
  }

  private word(word: Uint8Array): boolean {
    if (!startsWith(this.bytes, this.at, word)) return false;
    this.at += word.length;
    return true;
  }

  /** -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
  private number(): boolean {
    const { bytes, end } = this;
    let at = this.at;
    if (bytes[at] === 45) at++;
    const first = bytes[at]!;
    if (first === 48) at++;
    else if (first >= 49 && first <= 57) at = digits(bytes, at, end);
    else return false;
    if (bytes[at] === 46) {
      const from = at + 1;
      at = digits(bytes, from, end);
      if (at === from) return false;
    }
    const e = bytes[at];
    if (e === 101 || e === 69) {
      at++;
      const sign = bytes[at];
      if (sign === 43 || sign === 45) at++;
      const from = at;
      at = digits(bytes, from, end);
      if (at === from) return false;
    }
    this.at = at;
    return true;
  }
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102));
}

function digits(bytes: Uint8Array, from: number, end: number): number {
  let at = from;
  while (at < end) {
    const c = bytes[at]!;
    if (c < 48 || c > 57) break;
    at++;
  }
  return at;
}

/** The one SSE event ai-lb writes itself: the stream broke after the client got bytes. */
export function sseErrorEvent(message: string, code: string): string {
  return `data: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code } })}\n\n`;
}
