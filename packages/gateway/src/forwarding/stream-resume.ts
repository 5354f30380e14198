import type { ServerKind } from '@ai-lb/shared';
import type { TokenUsage } from '../http/exchange.ts';
import type { StreamTransform } from './stream-shapes.ts';

/**
 * The kinds known to continue a partial answer where it stopped, and how each is asked to:
 * - vLLM and SGLang: `continue_final_message: true` with `add_generation_prompt: false` (the
 *   final assistant message is rendered open-ended; the two flags are mutually exclusive);
 * - llama.cpp server: a trailing assistant message is a prefill by default (unless the server
 *   runs with --no-prefill-assistant);
 * - Ollama: its chat templates leave a trailing assistant message open, and its OpenAI
 *   endpoint takes the same messages.
 * LM Studio and generic OpenAI servers start a new turn after a trailing assistant message:
 * resuming there would stitch two different answers, so they are not resumed onto.
 */
export const RESUMABLE_KINDS: ReadonlySet<ServerKind> = new Set<ServerKind>(['vllm', 'sglang', 'llamacpp', 'ollama']);

/** Kinds that need the explicit switch to continue the final message instead of answering it. */
const NEEDS_CONTINUE_SWITCH: ReadonlySet<ServerKind> = new Set<ServerKind>(['vllm', 'sglang']);

/** Past this much partial text a continuation is not attempted: its prompt would be as large. */
export const MAX_PARTIAL_CHARS = 1024 * 1024;

export type ResumeSurface = 'chat' | 'completions';

/**
 * What the client got so far of one streamed answer, from the upstream records it was sent
 * (every segment: the first node's, then each continuation's), and whether it can be
 * continued at all: a tool call, a reasoning channel or several choices cannot be stitched.
 */
export class PartialAnswer {
  /** The first stream's id, created and model: what every spliced event carries. */
  identity: { id: unknown; created: unknown; model: unknown } | null = null;
  /** Why this answer cannot be continued; null while it can. */
  notResumable: string | null = null;
  private parts: string[] = [];
  private chars = 0;
  /** The client's prompt tokens as the first node counted them, when it reported usage. */
  private promptTokens: number | null = null;
  /** Completion tokens of finished segments; null once one of them reported none. */
  private doneTokens: number | null = 0;
  /** Content events of finished segments (the estimate for segments without usage). */
  private doneEvents = 0;
  private segmentUsage: TokenUsage | null = null;
  private segmentEvents = 0;
  private segments = 1;

  constructor(private readonly surface: ResumeSurface) {}

  get text(): string {
    if (this.parts.length > 1) this.parts = [this.parts.join('')];
    return this.parts[0] ?? '';
  }

  /** One parsed upstream record of the current segment. */
  observe(record: Record<string, unknown>): void {
    if (this.identity === null && record.id !== undefined) {
      this.identity = { id: record.id, created: record.created, model: record.model };
    }
    const usage = usageIn(record);
    if (usage !== null) {
      this.segmentUsage = usage;
      if (this.segments === 1) this.promptTokens = usage.promptTokens;
    }
    const choices = record.choices;
    if (!Array.isArray(choices)) return;
    for (const choice of choices as Array<Record<string, unknown> | null>) {
      if (choice === null || typeof choice !== 'object') continue;
      if (choice.index !== undefined && choice.index !== 0) this.notResumable ??= 'more than one choice';
      // Broken after its finish: nothing is missing but the end of the stream.
      if (choice.finish_reason != null) this.notResumable ??= 'the answer had finished';
      const text = this.surface === 'chat' ? this.chatText(choice) : choice.text;
      if (typeof text === 'string' && text !== '') this.add(text);
    }
  }

  /** A continuation starts: what came so far is one finished segment. */
  beginSegment(): void {
    // A continuation that failed before it said anything is no segment of the answer.
    if (this.segmentEvents === 0 && this.segmentUsage === null) return;
    this.doneTokens = this.doneTokens === null || this.segmentUsage === null ? null : this.doneTokens + this.segmentUsage.completionTokens;
    this.doneEvents += this.segmentEvents;
    this.segmentUsage = null;
    this.segmentEvents = 0;
    this.segments++;
  }

  /** Completion tokens the nodes reported so far, all segments; null when one did not. */
  reportedCompletionTokens(): number | null {
    if (this.doneTokens === null || this.segmentUsage === null) return null;
    return this.doneTokens + this.segmentUsage.completionTokens;
  }

  /**
   * The usage of the whole answer for a usage the current (continuation) segment reported:
   * completion tokens of every segment added up (a segment that reported none counts its
   * content events, as the gateway's token metrics do), prompt tokens the client's prompt
   * as the first node counted it (else the continuation's, which includes the partial answer).
   */
  splicedUsage(current: TokenUsage): TokenUsage {
    const before = this.doneTokens ?? this.doneEvents;
    return { promptTokens: this.promptTokens ?? current.promptTokens, completionTokens: before + current.completionTokens };
  }

  private chatText(choice: Record<string, unknown>): unknown {
    const delta = choice.delta as Record<string, unknown> | null | undefined;
    if (delta === null || typeof delta !== 'object') return undefined;
    if (Array.isArray(delta.tool_calls) && delta.tool_calls.length > 0) this.notResumable ??= 'a tool call';
    if (nonEmpty(delta.reasoning_content) || nonEmpty(delta.reasoning)) this.notResumable ??= 'a reasoning channel';
    return delta.content;
  }

  private add(text: string): void {
    this.segmentEvents++;
    if (this.notResumable !== null) return;
    this.chars += text.length;
    if (this.chars > MAX_PARTIAL_CHARS) {
      this.notResumable = `over ${MAX_PARTIAL_CHARS} characters of partial text`;
      this.parts = [];
      return;
    }
    this.parts.push(text);
  }
}

/**
 * The body that asks a node of `kind` to continue the partial answer: the client's request
 * with the partial text as a final assistant message (chat) or appended to the prompt
 * (completions), max tokens reduced by the tokens already produced when the nodes reported
 * them. Null when this request cannot be continued (several choices, a prompt that is not
 * one string, no token budget left).
 */
export function continuationBody(
  kind: ServerKind,
  surface: ResumeSurface,
  request: Record<string, unknown>,
  partial: { text: string; completionTokens: number | null },
  model: string,
): Record<string, unknown> | null {
  const body = continuationOf(surface, request, partial, model);
  if (body === null || surface === 'completions') return body;
  if (NEEDS_CONTINUE_SWITCH.has(kind)) {
    body.continue_final_message = true;
    body.add_generation_prompt = false;
  }
  return body;
}

/** Whether this request, with this many tokens produced so far, can be continued on any resumable kind. */
export function isContinuable(surface: ResumeSurface, request: Record<string, unknown>, completionTokens: number | null): boolean {
  return continuationOf(surface, request, { text: '', completionTokens }, '') !== null;
}

function continuationOf(
  surface: ResumeSurface,
  request: Record<string, unknown>,
  partial: { text: string; completionTokens: number | null },
  model: string,
): Record<string, unknown> | null {
  if (typeof request.n === 'number' && request.n > 1) return null;
  if (typeof request.best_of === 'number' && request.best_of > 1) return null;
  // echo would repeat what the client already has.
  const { echo: _echo, ...body } = request;
  body.model = model;
  for (const field of ['max_tokens', 'max_completion_tokens'] as const) {
    const limit = body[field];
    if (typeof limit !== 'number' || partial.completionTokens === null) continue;
    const left = limit - partial.completionTokens;
    if (left <= 0) return null;
    body[field] = left;
  }
  if (surface === 'completions') {
    if (typeof body.prompt !== 'string') return null;
    body.prompt = body.prompt + partial.text;
    return body;
  }
  if (!Array.isArray(body.messages)) return null;
  const messages = [...(body.messages as unknown[])];
  const last = messages.at(-1) as { role?: unknown; content?: unknown } | undefined;
  // A client that prefilled the answer itself: the partial text continues its message.
  if (body.continue_final_message === true && last?.role === 'assistant' && typeof last.content === 'string') {
    messages[messages.length - 1] = { ...last, content: last.content + partial.text };
  } else {
    messages.push({ role: 'assistant', content: partial.text });
  }
  body.messages = messages;
  return body;
}

/**
 * A continuation's events made part of the stream the client already reads: the first
 * stream's id, created and model on every event, no second role announcement, usage for the
 * whole answer, and at the end a comment naming the nodes before [DONE].
 */
export class ContinuationSplice implements StreamTransform {
  /** The whole answer's usage, as last sent to the client; null while none was. */
  usage: TokenUsage | null = null;

  constructor(
    private readonly partial: PartialAnswer,
    private readonly trailer: string,
  ) {}

  push(record: Record<string, unknown>): string {
    const identity = this.partial.identity;
    const out: Record<string, unknown> = { ...record };
    if (identity !== null) {
      if (identity.id !== undefined) out.id = identity.id;
      if (identity.created !== undefined) out.created = identity.created;
      if (identity.model !== undefined) out.model = identity.model;
    }
    const usage = usageIn(record);
    if (usage !== null) {
      const whole = this.partial.splicedUsage(usage);
      this.usage = whole;
      out.usage = {
        ...(record.usage as object),
        prompt_tokens: whole.promptTokens,
        completion_tokens: whole.completionTokens,
        total_tokens: whole.promptTokens + whole.completionTokens,
      };
    }
    if (Array.isArray(record.choices)) {
      const choices = (record.choices as unknown[]).map(withoutRole);
      // The whole answer's usage goes out with the last chunk: an empty chunk is dropped even with a running one.
      if (choices.length > 0 && choices.every(isEmptyChoice)) return '';
      out.choices = choices;
    }
    return `data: ${JSON.stringify(out)}\n\n`;
  }

  finish(): string {
    return `: ${this.trailer}\n\ndata: [DONE]\n\n`;
  }
}

/** The comment that names the nodes of a resumed stream (the head's x-routed-node names only the first). */
export function resumeTrailer(node: string, before: readonly string[]): string {
  return `ai-lb resumed on ${node} after ${before.join(', ')}`;
}

/** The usage a record carries, read from its upstream's `usage`. */
export function usageIn(record: Record<string, unknown>): TokenUsage | null {
  const usage = record.usage as { prompt_tokens?: unknown; completion_tokens?: unknown } | null | undefined;
  if (usage === null || typeof usage !== 'object') return null;
  const { prompt_tokens: prompt, completion_tokens: completion } = usage;
  if (typeof prompt !== 'number' || typeof completion !== 'number' || !(prompt >= 0) || !(completion >= 0)) return null;
  return { promptTokens: prompt, completionTokens: completion };
}

/** The assistant's role was announced by the first stream: a continuation's chunks drop it. */
function withoutRole(choice: unknown): unknown {
  if (choice === null || typeof choice !== 'object') return choice;
  const delta = (choice as { delta?: unknown }).delta;
  if (delta === null || typeof delta !== 'object' || !('role' in delta)) return choice;
  const { role: _role, ...rest } = delta as Record<string, unknown>;
  return { ...choice, delta: rest };
}

/** A chunk choice that says nothing: no text, no finish, no tool call (a role-only opener once its role is dropped). */
function isEmptyChoice(choice: unknown): boolean {
  if (choice === null || typeof choice !== 'object') return false;
  const c = choice as Record<string, unknown>;
  if (c.finish_reason != null || nonEmpty(c.text)) return false;
  const delta = c.delta as Record<string, unknown> | undefined;
  if (delta === undefined || delta === null) return c.text === undefined || c.text === '';
  return Object.entries(delta).every(([key, value]) => value === null || value === '' || (key === 'content' && value === ''));
}

function nonEmpty(value: unknown): boolean {
  return typeof value === 'string' && value !== '';
}
