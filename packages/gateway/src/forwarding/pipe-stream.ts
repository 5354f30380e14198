import type { Dispatcher } from 'undici';
import type { AttemptOutcome } from '@ai-lb/shared';
import type { AttemptAbort } from './upstream-request.ts';
import { AttemptError } from './attempt-error.ts';
import { usageOf, type Exchange } from '../http/exchange.ts';
import type { SseEventInfo } from './sse-events.ts';
import { OPENAI_SSE, type EventSplitter, type StreamShape, type StreamTransform } from './stream-shapes.ts';
import { finishReasonOf } from '../observability/tracing.ts';

export interface PipeStreamOptions {
  /** The client's side: the response written to, and where a broken stream is noted. */
  exchange: Exchange;
  upstream: Dispatcher.ResponseData;
  abort: AttemptAbort;
  /** FIRST_TOKEN_TIMEOUT_SECS in ms; 0 = off (then the idle bound covers the first event too). */
  firstTokenTimeoutMs: number;
  streamIdleTimeoutMs: number;
  /** Writes the response head; called once, right before the first bytes go to the client. */
  commit: () => void;
  onDroppedEvent: () => void;
  /** How the upstream's events look (default: OpenAI chat/completions SSE). */
  shape?: StreamShape;
  /** Translates the upstream's events into the client's API; null: relayed as they are. */
  transform?: StreamTransform | null;
  /**
   * Sees the parsed upstream events (e.g. the Responses API's response id) — not plain content
   * events (StreamShape.plainEvents), which are relayed unparsed, unless `plainRecords`.
   */
  onRecord?: (record: Record<string, unknown>) => void;
  /** onRecord must see every event, content too (STREAM_RESUME keeps the answer's text). */
  plainRecords?: boolean;
  /**
   * STREAM_RESUME: a break after the client got content (cut, in-band error, idle) leaves the
   * response open and is reported with `open`, for the caller to continue or end the stream.
   */
  keepOpenOnBreak?: boolean;
}

export type PipeStreamResult =
  /** Nothing reached the client: the attempt failed and the request may fail over. */
  | { committed: false; error: unknown }
  /** The client got this stream; it ended cleanly (success), broke (failure) or the client left (neutral). */
  | { committed: true; outcome: AttemptOutcome; error?: unknown; open?: true };

/**
 * Passes an upstream event stream to the client event by event, as it arrives. Before the
 * first data event is forwarded nothing is sent, so a failing upstream (error as first
 * event, silence, a cut) can still fail over. After that, a broken upstream ends the
 * stream with one error event — never a silent truncation, never a second answer.
 * Events whose data is not JSON are dropped (SDK parsers would throw on them). With a
 * transform, what is relayed is the transform's output for each event instead.
 */
export function pipeStream(options: PipeStreamOptions): Promise<PipeStreamResult> {
  return new StreamPipe(options).run();
}

class StreamPipe {
  private readonly shape: StreamShape;
  private readonly splitter: EventSplitter;
  private readonly transform: StreamTransform | null;
  private readonly firstTokenBound: boolean;
  /** The shape's plainEvents, when no one reads content records (no translation, no plainRecords). */
  private readonly plainEvents: ((chunk: Buffer) => number) | null;
  private committed = false;
  private finished = false;
  private upstreamReportedError = false;
  /** An in-band error after the commit, held back from the client to continue elsewhere (keepOpenOnBreak). */
  private heldError: AttemptError | null = null;
  private settled = false;
  private resolve!: (result: PipeStreamResult) => void;

  constructor(private readonly options: PipeStreamOptions) {
    this.firstTokenBound = options.firstTokenTimeoutMs > 0;
    this.shape = options.shape ?? OPENAI_SSE;
    this.splitter = this.shape.splitter();
    this.transform = options.transform ?? null;
    const needsRecord = this.transform !== null || (options.onRecord !== undefined && options.plainRecords === true);
    this.plainEvents = needsRecord ? null : (this.shape.plainEvents ?? null);
  }

  run(): Promise<PipeStreamResult> {
    const { abort, firstTokenTimeoutMs, streamIdleTimeoutMs, upstream } = this.options;
    if (this.firstTokenBound) {
      abort.arm(firstTokenTimeoutMs, 'AI_LB_FIRST_TOKEN_TIMEOUT', 'no first token within');
    } else {
      abort.arm(streamIdleTimeoutMs, 'AI_LB_BODY_TIMEOUT', 'no stream event within');
    }
    return new Promise<PipeStreamResult>((resolve) => {
      this.resolve = resolve;
      upstream.body.on('data', this.onData);
      upstream.body.once('end', this.onEnd);
      // Not once: a destroyed body may report more than one error, and an unheard one would crash.
      upstream.body.on('error', this.onError);
    });
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      if (this.plainEvents !== null && this.splitter.betweenEvents === true) {
        // Most chunks of a healthy stream: content events, relayed without decoding them.
        const plain = this.plainEvents(chunk);
        if (plain > 0) {
          this.options.exchange.contentEvents += plain;
          return this.write(chunk);
        }
      }
      const events = this.splitter.push(chunk);
      this.forward(events, this.splitter.exact === true ? chunk : null);
    } catch (error) {
      this.onError(error);
    }
  };

  private readonly onEnd = (): void => {
    if (this.settled) return;
    const rest = this.splitter.flush();
    if (rest !== null) this.forward([rest]);
    if (this.settled) return;
    if (!this.committed) {
      return this.failBeforeCommit(new AttemptError('AI_LB_INCOMPLETE_STREAM', 'the upstream ended the stream without an event'));
    }
    if (this.finished || this.upstreamReportedError) {
      // An error the upstream reported in-band went to the client as it came: a 200, yet no answer.
      if (this.upstreamReportedError) this.options.exchange.streamBroken = true;
      this.options.exchange.res.end(this.transform !== null && !this.upstreamReportedError ? this.transform.finish() : undefined);
      return this.settle({ committed: true, outcome: this.upstreamReportedError ? 'failure' : 'success' });
    }
    this.endWithError(new AttemptError('AI_LB_INCOMPLETE_STREAM', 'the upstream ended the stream before the answer was complete'));
  };

  private readonly onDrain = (): void => {
    if (this.settled) return;
    const idleMs = this.options.streamIdleTimeoutMs;
    this.options.abort.arm(idleMs, 'AI_LB_STREAM_IDLE_TIMEOUT', 'stream idle for');
    this.options.upstream.body.resume();
  };

  private readonly onError = (error: unknown): void => {
    if (this.settled) return;
    if (!this.committed) return this.failBeforeCommit(error);
    this.options.upstream.body.destroy();
    this.endWithError(error);
  };

  /**
   * Writes what is forwardable of these events; commits the response on the first. `chunk`:
   * the upstream bytes the events are exactly, written as they are when every event passes.
   */
  private forward(events: string[], chunk: Buffer | null = null): void {
    const out = this.select(events, chunk);
    if (out instanceof AttemptError) return this.failBeforeCommit(out);
    if (out.length === 0) {
      if (this.heldError !== null) return this.onError(this.heldError);
      // Bytes that carried nothing forwardable still prove the upstream is alive.
      if (this.committed || !this.firstTokenBound) this.options.abort.refresh();
      return;
    }
    this.write(out);
    if (this.heldError !== null) this.onError(this.heldError);
  }

  /** Writes forwardable events to the client; the first commits the response. */
  private write(out: string | Buffer): void {
    const { abort, upstream } = this.options;
    const { res } = this.options.exchange;
    if (!this.committed) {
      this.committed = true;
      this.options.commit();
      const idleMs = this.options.streamIdleTimeoutMs;
      abort.arm(idleMs, 'AI_LB_STREAM_IDLE_TIMEOUT', 'stream idle for');
    } else {
      abort.refresh();
    }
    if (!res.write(out)) {
      // The client is not reading: stop reading the upstream too, and time the client on its
      // own bound. The node's idle timer must not run meanwhile: the node is not what is slow.
      upstream.body.pause();
      const writeMs = this.options.exchange.limits.clientWriteTimeoutMs;
      abort.arm(writeMs, 'AI_LB_CLIENT_STALLED', 'the client read nothing for');
      res.once('drain', this.onDrain);
    }
  }

  /** The text (or bytes) to forward, or the reason the attempt failed before anything was sent. */
  private select(events: string[], chunk: Buffer | null): string | Buffer | AttemptError {
    let out = '';
    const { transform } = this;
    let asIs = chunk !== null && transform === null;
    for (const event of events) {
      const info = this.shape.classify(event);
      if (info.kind === 'invalid') {
        this.options.onDroppedEvent();
        asIs = false;
        continue;
      }
      const first = !this.committed && out === '';
      if (info.kind === 'error') {
        if (first) return new AttemptError('AI_LB_ERROR_EVENT', errorMessageOf(info));
        if (this.options.keepOpenOnBreak === true) {
          this.heldError = new AttemptError('AI_LB_ERROR_EVENT', errorMessageOf(info).replace('began', 'broke'));
          asIs = false;
          break;
        }
        this.upstreamReportedError = true;
      }
      // Keep-alive comments before the first data event are not worth committing for.
      if (info.kind === 'other' && (first || transform !== null)) {
        asIs = false;
        continue;
      }
      if (info.finished) this.finished = true;
      if (info.record !== undefined) this.observe(info);
      else if (info.kind === 'data') this.options.exchange.contentEvents++;
      if (transform === null) out += event;
      else if (info.record !== undefined) out += transform.push(info.record);
    }
    return asIs ? chunk! : out;
  }

  private observe(info: SseEventInfo): void {
    const { exchange, onRecord } = this.options;
    const record = info.record!;
    onRecord?.(record);
    if (info.kind !== 'data') return;
    exchange.contentEvents++;
    if (info.finished && exchange.trace !== null) exchange.finishReason = finishReasonOf(record);
    // OpenAI streams carry usage in their last chunk when the client asked
    // (stream_options.include_usage); Anthropic, Responses and Ollama streams always do.
    exchange.usage = usageOf(record, exchange.usage) ?? exchange.usage;
  }

  private failBeforeCommit(error: unknown): void {
    this.options.upstream.body.destroy();
    this.settle({ committed: false, error });
  }

  private endWithError(error: unknown): void {
    const { exchange } = this.options;
    const code = (error as { code?: unknown })?.code;
    // A client that left or stopped reading gets no error event (it would not read it either).
    const clientGone = code === 'AI_LB_CLIENT_ABORT' || code === 'AI_LB_CLIENT_STALLED';
    if (this.options.keepOpenOnBreak === true && !clientGone && code !== 'AI_LB_SHUTDOWN' && !exchange.res.destroyed) {
      return this.settle({ committed: true, outcome: 'failure', error, open: true });
    }
    if (code === 'AI_LB_SHUTDOWN' && !exchange.res.destroyed) {
      exchange.endStreamWithError((error as Error).message, 'gateway_shutdown');
    } else if (!clientGone && !exchange.res.destroyed) {
      exchange.endStreamWithError(`upstream stream failed: ${(error as Error)?.message ?? String(error)}`, 'upstream_stream_error');
    } else {
      exchange.res.destroy();
    }
    this.settle({ committed: true, outcome: clientGone || code === 'AI_LB_SHUTDOWN' ? 'neutral' : 'failure', error });
  }

  private settle(result: PipeStreamResult): void {
    if (this.settled) return;
    this.settled = true;
    this.options.upstream.body.off('data', this.onData);
    this.options.abort.disarm();
    this.resolve(result);
  }
}

function errorMessageOf(info: SseEventInfo): string {
  const record = info.record as { error?: { message?: unknown } | string; response?: { error?: { message?: unknown } } } | undefined;
  const error = record?.error ?? record?.response?.error;
  if (typeof error === 'string') return `the upstream stream began with an error: ${error}`;
  if (typeof error?.message === 'string') return `the upstream stream began with an error: ${error.message}`;
  return 'the upstream stream began with an error event';
}
