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

  /** An upstream that never ends an event must not make the gateway buffer without bound. */
  constructor(private readonly maxEventChars = DEFAULT_MAX_EVENT_CHARS) {}

  /** Whole events completed by this chunk, each normalised to end with "\n\n". */
  push(chunk: Buffer): string[] {
    let text = this.decoder.write(chunk);
    // Only the first bytes of a multi-byte character: nothing to look at yet.
    if (text === '') return [];
    if (this.afterCr && text.charCodeAt(0) === LF) text = text.slice(1);
    this.afterCr = text.charCodeAt(text.length - 1) === CR;
    // Server-sent events allow CRLF and CR line ends; a trailing lone CR is already a line end,
    // and afterCr drops the LF that may follow it in the next chunk.
    if (text.includes('\r')) text = text.replace(/\r\n?/g, '\n');
    return this.split(text);
  }

  /** What is left when the upstream ended: an event without its blank line, if any. */
  flush(): string | null {
    let rest = this.parts.join('') + this.decoder.end();
    this.parts = [];
    this.partsChars = 0;
    this.atLineStart = false;
    this.afterCr = false;
    let end = rest.length;
    while (end > 0 && rest.charCodeAt(end - 1) === LF) end--;
    rest = rest.slice(0, end);
    return rest.trim() === '' ? null : `${rest}\n\n`;
  }

  private split(text: string): string[] {
    const events: string[] = [];
    let start = 0;
    if (this.partsChars === 0) {
      start = skipLineEnds(text, 0); // stray blank lines between events
    } else if (this.atLineStart && text.charCodeAt(0) === LF) {
      // The blank line that ends the pending event fell across the chunk boundary.
      events.push(this.finish('\n'));
      start = skipLineEnds(text, 1);
    }
    for (;;) {
      const end = text.indexOf('\n\n', start);
      if (end === -1) break;
      events.push(this.finish(text.slice(start, end + 2)));
      start = skipLineEnds(text, end + 2);
    }
    if (start < text.length) this.keep(text.slice(start));
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

/** The one SSE event ai-lb writes itself: the stream broke after the client got bytes. */
export function sseErrorEvent(message: string, code: string): string {
  return `data: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code } })}\n\n`;
}
