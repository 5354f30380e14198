import { StringDecoder } from 'node:string_decoder';
import { AttemptError } from './attempt-error.ts';

/**
 * Splits an upstream event stream into whole SSE events (text up to a blank line) and
 * says what each one is. Pure: no I/O, so the byte-level cases are unit-tested directly.
 */
export class SseEventSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  /** An upstream that never ends an event must not make the gateway buffer without bound. */
  constructor(private readonly maxEventChars = 4 * 1024 * 1024) {}

  /** Whole events completed by this chunk, each normalised to end with "\n\n". */
  push(chunk: Buffer): string[] {
    let text = this.pending + this.decoder.write(chunk);
    // A trailing "\r" may be the first half of a CRLF split across chunks: keep it raw.
    const tail = text.endsWith('\r') ? '\r' : '';
    if (tail) text = text.slice(0, -1);
    // The SSE spec allows CRLF and CR line ends; normalising once keeps the split simple.
    if (text.includes('\r')) text = text.replace(/\r\n?/g, '\n');
    const events: string[] = [];
    let start = 0;
    for (;;) {
      while (text.charCodeAt(start) === 10) start++; // stray blank lines between events
      const end = text.indexOf('\n\n', start);
      if (end === -1) break;
      events.push(text.slice(start, end + 2));
      start = end + 2;
    }
    this.pending = (start === 0 ? text : text.slice(start)) + tail;
    if (this.pending.length > this.maxEventChars) {
      throw new AttemptError('AI_LB_BAD_RESPONSE', `an upstream SSE event exceeded ${this.maxEventChars} characters`);
    }
    return events;
  }

  /** What is left when the upstream ended: an event without its blank line, if any. */
  flush(): string | null {
    const rest = (this.pending + this.decoder.end()).replace(/\r\n?/g, '\n').replace(/\n+$/, '');
    this.pending = '';
    return rest.trim() === '' ? null : `${rest}\n\n`;
  }
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
}

export function inspectSseEvent(event: string): SseEventInfo {
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
    return { kind: 'error', finished: false };
  }
  const finished = Array.isArray(record.choices) && record.choices.some((c) => c?.finish_reason != null);
  return { kind: 'data', finished };
}

/** The one SSE event ai-lb writes itself: the stream broke after the client got bytes. */
export function sseErrorEvent(message: string, code: string): string {
  return `data: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code } })}\n\n`;
}
