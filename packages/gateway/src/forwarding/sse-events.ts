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

  /** An upstream that never ends an event must not make the gateway buffer without bound. */
  constructor(private readonly maxEventChars = DEFAULT_MAX_EVENT_CHARS) {}

  /** Whole events completed by this chunk, each normalised to end with "\n\n". */
  push(chunk: Buffer): string[] {
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

/**
 * What may make an OpenAI chunk more than content: an `error` or `usage` key (or value), a
 * `finish_reason` that is not null, or a \u escape (a key could be spelled with one). Only
 * events that match are parsed; compact and spaced JSON alike.
 */
const NEEDS_PARSE = /"(?:error|usage)"|"finish_reason"\s*:\s*[^n\s]|\\u/;

/**
 * classifySseEvent for a relay that needs no record (no onRecord, no translation): an
 * ordinary content chunk — one `data:` line holding a JSON object with no error, usage or
 * finish_reason — is checked to be JSON without being parsed (isJsonObjectText: no objects
 * built, nothing for the GC) and answers { kind: 'data' } without a record. Every other
 * event goes to classifySseEvent. The answer's kind and finished are the same either way.
 */
export function classifySseEventLean(event: string): SseEventInfo {
  // "data: {" or "data:{", and the event is that one line (normalised events end in "\n\n").
  const start = event.charCodeAt(5) === 32 ? 6 : 5;
  const end = event.length - 2;
  if (
    !event.startsWith('data:') ||
    event.charCodeAt(start) !== 123 || // {
    event.charCodeAt(end - 1) !== 125 || // }
    event.indexOf('\n', start) !== end ||
    NEEDS_PARSE.test(event)
  ) {
    return classifySseEvent(event);
  }
  return isJsonObjectText(event, start, end) ? LEAN_DATA : INVALID;
}

const LEAN_DATA: SseEventInfo = Object.freeze({ kind: 'data', finished: false });
const INVALID: SseEventInfo = Object.freeze({ kind: 'invalid', finished: false });

/**
 * Whether text[start, end) is one JSON object (RFC 8259, as JSON.parse accepts it), checked
 * in one pass without building it. Strings may hold any character but unescaped controls;
 * nesting is bounded like JSON.parse's stack would be by a hostile upstream.
 */
export function isJsonObjectText(text: string, start: number, end: number): boolean {
  const scan = new JsonScan(text, end);
  scan.at = skipWs(text, start, end);
  if (text.charCodeAt(scan.at) !== 123 || !scan.value(0)) return false;
  return skipWs(text, scan.at, end) === end;
}

const MAX_DEPTH = 512;

function skipWs(text: string, from: number, end: number): number {
  let at = from;
  for (; at < end; at++) {
    const c = text.charCodeAt(at);
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9) break;
  }
  return at;
}

class JsonScan {
  at = 0;
  constructor(
    private readonly text: string,
    private readonly end: number,
  ) {}

  value(depth: number): boolean {
    if (depth > MAX_DEPTH) return false;
    const { text } = this;
    this.at = skipWs(text, this.at, this.end);
    const c = text.charCodeAt(this.at);
    if (c === 123) return this.object(depth);
    if (c === 91) return this.array(depth);
    if (c === 34) return this.string();
    if (c === 116) return this.word('true');
    if (c === 102) return this.word('false');
    if (c === 110) return this.word('null');
    return this.number();
  }

  private object(depth: number): boolean {
    const { text, end } = this;
    this.at = skipWs(text, this.at + 1, end);
    if (text.charCodeAt(this.at) === 125) {
      this.at++;
      return true;
    }
    for (;;) {
      if (text.charCodeAt(this.at) !== 34 || !this.string()) return false;
      this.at = skipWs(text, this.at, end);
      if (text.charCodeAt(this.at) !== 58) return false; // :
      this.at++;
      if (!this.value(depth + 1)) return false;
      this.at = skipWs(text, this.at, end);
      const c = text.charCodeAt(this.at++);
      if (c === 125) return true;
      if (c !== 44) return false; // ,
      this.at = skipWs(text, this.at, end);
    }
  }

  private array(depth: number): boolean {
    const { text, end } = this;
    this.at = skipWs(text, this.at + 1, end);
    if (text.charCodeAt(this.at) === 93) {
      this.at++;
      return true;
    }
    for (;;) {
      if (!this.value(depth + 1)) return false;
      this.at = skipWs(text, this.at, end);
      const c = text.charCodeAt(this.at++);
      if (c === 93) return true;
      if (c !== 44) return false;
    }
  }

  /** At the opening quote; ends after the closing one. */
  private string(): boolean {
    const { text, end } = this;
    for (let at = this.at + 1; at < end; at++) {
      const c = text.charCodeAt(at);
      if (c === 34) {
        this.at = at + 1;
        return true;
      }
      if (c < 32) return false;
      if (c !== 92) continue; // backslash
      const e = text.charCodeAt(++at);
      if (e === 117) {
        for (let i = 0; i < 4; i++) if (!isHex(text.charCodeAt(++at))) return false;
      } else if (e !== 34 && e !== 92 && e !== 47 && e !== 98 && e !== 102 && e !== 110 && e !== 114 && e !== 116) {
        return false;
      }
    }
    return false;
  }

  private word(word: string): boolean {
    if (!this.text.startsWith(word, this.at) || this.at + word.length > this.end) return false;
    this.at += word.length;
    return true;
  }

  /** -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
  private number(): boolean {
    const { text, end } = this;
    let at = this.at;
    if (text.charCodeAt(at) === 45) at++;
    const first = text.charCodeAt(at);
    if (first === 48) at++;
    else if (first >= 49 && first <= 57) at = digits(text, at, end);
    else return false;
    if (text.charCodeAt(at) === 46) {
      const from = at + 1;
      at = digits(text, from, end);
      if (at === from) return false;
    }
    const e = text.charCodeAt(at);
    if (e === 101 || e === 69) {
      at++;
      const sign = text.charCodeAt(at);
      if (sign === 43 || sign === 45) at++;
      const from = at;
      at = digits(text, from, end);
      if (at === from) return false;
    }
    if (at > end) return false;
    this.at = at;
    return true;
  }
}

function digits(text: string, from: number, end: number): number {
  let at = from;
  while (at < end) {
    const c = text.charCodeAt(at);
    if (c < 48 || c > 57) break;
    at++;
  }
  return at;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/** The one SSE event ai-lb writes itself: the stream broke after the client got bytes. */
export function sseErrorEvent(message: string, code: string): string {
  return `data: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code } })}\n\n`;
}
