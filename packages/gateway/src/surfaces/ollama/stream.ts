/**
 * A chat-completions (or text-completions) stream -> Ollama's NDJSON stream, chunk by chunk:
 * one line per content or thinking delta ({"message":{…},"done":false}, or "response" for
 * /api/generate), tool calls as one whole line once their arguments are complete (Ollama
 * sends them that way, with arguments as an object), and a last line with done:true,
 * done_reason, the counts from the upstream's usage and the durations.
 *
 * An upstream that stops before finish_reason, an in-band error, or tool arguments that are
 * not a JSON object end the stream with Ollama's error line {"error":"…"} instead of a done
 * line: never a silently truncated answer. Pure but for the clock the caller passes.
 */
import type { ChatChunk, ChatUsage } from '../chat-types.ts';
import { inBandErrorMessage } from '../chat-types.ts';
import { isRecord } from '../read-fields.ts';
import { UpstreamAnswerError } from '../upstream-answer-error.ts';
import type { OllamaTiming, OllamaToolCall } from './ollama-types.ts';
import { createdAt, doneReason, metrics, ollamaToolCalls } from './response.ts';

export interface OllamaStreamOptions {
  model: string;
  /** /api/chat lines carry `message`, /api/generate lines `response`. */
  mode: 'chat' | 'generate';
  timing: OllamaTiming;
}

interface PendingCall {
  id?: string;
  name?: string;
  args: string;
}

export class OllamaStreamTranslator {
  private ended = false;
  private firstTokenAtMs: number | null = null;
  private finishReason: string | null = null;
  private usage: ChatUsage | null = null;
  private readonly calls = new Map<number, PendingCall>();

  constructor(private readonly options: OllamaStreamOptions) {}

  get isEnded(): boolean {
    return this.ended;
  }

  /** One parsed upstream `data:` event -> NDJSON lines to write (maybe none). */
  push(chunk: unknown): string {
    if (this.ended || !isRecord(chunk)) return '';
    const data = chunk as ChatChunk;
    if (data.error !== undefined && data.error !== null) return this.fail(inBandErrorMessage(data.error));
    let out = '';
    const choice = data.choices?.find((c) => (c?.index ?? 0) === 0);
    const delta = choice?.delta;
    const reasoning = delta?.reasoning_content ?? delta?.reasoning;
    if (typeof reasoning === 'string' && reasoning !== '') out += this.line('', reasoning);
    const text = typeof delta?.content === 'string' ? delta.content : typeof choice?.text === 'string' ? choice.text : '';
    if (text !== '') out += this.line(text, undefined);
    if (Array.isArray(delta?.tool_calls)) {
      this.markFirstToken();
      delta.tool_calls.forEach((call, position) => {
        this.addCallDelta(call, position);
      });
    }
    if (typeof choice?.finish_reason === 'string') this.finishReason = choice.finish_reason;
    if (isRecord(data.usage)) this.usage = data.usage;
    return out;
  }

  /** The upstream ended: the tool calls (if any) and the done line, or an error line if it ended early. */
  finish(): string {
    if (this.ended) return '';
    if (this.finishReason === null) return this.fail('the upstream stream ended before the answer was finished');
    let out = '';
    if (this.calls.size > 0) {
      let calls: OllamaToolCall[];
      try {
        const byIndex = [...this.calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call);
        calls = ollamaToolCalls(byIndex.map((c) => ({ id: c.id, function: { name: c.name, arguments: c.args } })));
      } catch (error) {
        if (!(error instanceof UpstreamAnswerError)) throw error;
        return this.fail(error.message);
      }
      out += this.json({ message: { role: 'assistant', content: '', tool_calls: calls }, done: false });
    }
    const done = {
      done: true,
      done_reason: doneReason(this.finishReason),
      ...metrics(this.usage, this.options.timing, this.firstTokenAtMs),
    };
    out += this.json(this.options.mode === 'chat' ? { message: { role: 'assistant', content: '' }, ...done } : { response: '', ...done });
    this.ended = true;
    return out;
  }

  /** Ends the stream with Ollama's error line (an upstream failure after the first byte). */
  fail(message: string): string {
    if (this.ended) return '';
    this.ended = true;
    return `${JSON.stringify({ error: message })}\n`;
  }

  private addCallDelta(call: unknown, position: number) {
    if (!isRecord(call)) return;
    const index = typeof call.index === 'number' ? call.index : position;
    const pending = this.calls.get(index) ?? { args: '' };
    this.calls.set(index, pending);
    if (typeof call.id === 'string' && call.id !== '') pending.id ??= call.id;
    const fn = isRecord(call.function) ? call.function : {};
    if (typeof fn.name === 'string' && fn.name !== '') pending.name ??= fn.name;
    if (typeof fn.arguments === 'string') pending.args += fn.arguments;
    else if (isRecord(fn.arguments)) pending.args += JSON.stringify(fn.arguments);
  }

  private line(content: string, thinking: string | undefined): string {
    this.markFirstToken();
    if (this.options.mode === 'generate') return this.json({ response: content, ...(thinking ? { thinking } : {}), done: false });
    return this.json({ message: { role: 'assistant', content, ...(thinking ? { thinking } : {}) }, done: false });
  }

  private markFirstToken() {
    this.firstTokenAtMs ??= this.options.timing.clock();
  }

  private json(fields: object): string {
    return `${JSON.stringify({ model: this.options.model, created_at: createdAt(this.options.timing), ...fields })}\n`;
  }
}
