import { StringDecoder } from 'node:string_decoder';
import { AttemptError } from './attempt-error.ts';
import {
  classifySseEvent,
  DEFAULT_MAX_EVENT_CHARS,
  plainContentEvents,
  plainTypedEvents,
  SseEventSplitter,
  type SseEventInfo,
} from './sse-events.ts';

/**
 * How one API's streamed answers look upstream: how to cut the bytes into events and what
 * each event means (content, the end of the answer, an in-band error, not JSON). The relay
 * (pipe-stream.ts) is the same for all of them.
 */
export interface StreamShape {
  /** The content type of the stream as the client gets it. */
  contentType: string;
  splitter(): EventSplitter;
  /** What the event is. */
  classify(event: string): SseEventInfo;
  /**
   * For a relay that reads no records, between events: how many events the chunk is when it
   * is whole content events that need no look beyond their bytes (neither the end of the
   * answer, nor an error, nor usage, nor malformed), to be written as they are; 0 when the
   * chunk must be split and classified.
   */
  plainEvents?(chunk: Buffer): number;
}

export interface EventSplitter {
  /** Whole events completed by this chunk. */
  push(chunk: Buffer): string[];
  /** The events of the last push are exactly that chunk's bytes (the chunk may be written as is). */
  readonly exact?: boolean;
  /** Nothing of an event is pending: a chunk of whole events may be relayed without a push. */
  readonly betweenEvents?: boolean;
  /** What is left when the upstream ended, if anything. */
  flush(): string | null;
}

/** OpenAI chat / completions SSE: `choices[].finish_reason` ends the answer, `{"error"}` is an error. */
export const OPENAI_SSE: StreamShape = {
  contentType: 'text/event-stream',
  splitter: () => new SseEventSplitter(),
  classify: classifySseEvent,
  plainEvents: plainContentEvents,
};

/**
 * SSE whose events carry a `type` (Anthropic Messages, OpenAI Responses): the end of the
 * answer and in-band errors are named by that type.
 */
export const TYPED_SSE: StreamShape = {
  contentType: 'text/event-stream',
  splitter: () => new SseEventSplitter(),
  classify(event) {
    const info = classifySseEvent(event);
    if (info.record === undefined) return info;
    const type = info.record.type;
    if (type === 'error' || type === 'response.failed') return { kind: 'error', finished: false, record: info.record };
    if (type === 'message_stop' || type === 'response.completed' || type === 'response.incomplete') {
      return { kind: 'data', finished: true, record: info.record };
    }
    return { kind: 'data', finished: false, record: info.record };
  },
  plainEvents: plainTypedEvents,
};

/** Ollama's NDJSON: one JSON object per line; `"done": true` ends the answer, `{"error"}` is one. */
export const OLLAMA_NDJSON: StreamShape = {
  contentType: 'application/x-ndjson',
  splitter: () => new NdjsonSplitter(),
  classify(line) {
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      return line.trim() === '' ? { kind: 'other', finished: false } : { kind: 'invalid', finished: false };
    }
    if (record === null || typeof record !== 'object' || Array.isArray(record)) return { kind: 'invalid', finished: false };
    const value = record as Record<string, unknown>;
    if (value.error !== undefined && value.error !== null) return { kind: 'error', finished: false, record: value };
    return { kind: 'data', finished: value.done === true, record: value };
  },
};

/** Lines ending in "\n", each bounded like an SSE event; each byte looked at once. */
export class NdjsonSplitter implements EventSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  constructor(private readonly maxLineChars = DEFAULT_MAX_EVENT_CHARS) {}

  push(chunk: Buffer): string[] {
    const text = this.decoder.write(chunk);
    const lines: string[] = [];
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      const piece = text.slice(start, end + 1);
      this.check(piece.length);
      lines.push(this.pending === '' ? piece : this.pending + piece);
      this.pending = '';
      start = end + 1;
    }
    if (start < text.length) {
      this.check(text.length - start);
      this.pending += text.slice(start);
    }
    return lines;
  }

  flush(): string | null {
    const rest = this.pending + this.decoder.end();
    this.pending = '';
    return rest.trim() === '' ? null : `${rest}\n`;
  }

  private check(added: number): void {
    if (this.pending.length + added > this.maxLineChars) {
      throw new AttemptError('AI_LB_BAD_RESPONSE', `an upstream stream line exceeded ${this.maxLineChars} characters`);
    }
  }
}

/**
 * A stream translator of one attempt (surfaces/anthropic, surfaces/ollama): the upstream's
 * parsed chat-completion chunks in, the client's API's events out.
 */
export interface StreamTransform {
  /** One parsed upstream data event -> the text to write (maybe empty). */
  push(record: Record<string, unknown>): string;
  /** The upstream ended: what closes the client's stream. */
  finish(): string;
}
