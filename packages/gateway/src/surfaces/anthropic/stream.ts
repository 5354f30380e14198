/**
 * A chat-completions stream -> Anthropic's event sequence, one upstream chunk at a time:
 *
 *   message_start, then per content block content_block_start / _delta… / _stop (text_delta,
 *   thinking_delta, input_json_delta), then message_delta (stop_reason, usage), message_stop.
 *
 * Anthropic blocks never interleave, chat deltas may: a tool call's arguments can still be
 * streaming when the next tool call or more text begins. The open tool block therefore stays
 * open until its arguments form a complete JSON value; whatever arrives for other blocks
 * meanwhile waits in arrival order and is replayed once the block closes (or at the end). So
 * every chunking of a chat stream gives a well-formed sequence whose deltas add up to the
 * non-stream answer.
 *
 * The stream is never ended silently: an upstream that stops before finish_reason, an
 * in-band error, or tool arguments that are not a JSON object end it with an `error` event.
 * Pure: the caller parses the upstream SSE and writes what this returns.
 */
import type { ChatChunk, ChatUsage } from '../chat-types.ts';
import { inBandErrorMessage } from '../chat-types.ts';
import { isRecord, parseJsonOrUndefined } from '../read-fields.ts';
import type { AnthropicErrorType } from './errors.ts';
import { newMessageId, newToolUseId, stopReasonOf, usageOf } from './response.ts';

export interface MessagesStreamOptions {
  model: string;
  stopSequences: readonly string[];
  id?: string;
}

type Item = { kind: 'text' | 'thinking'; text: string } | { kind: 'tool'; index: number };

interface ToolState {
  id?: string;
  name?: string;
  args: string;
  /** How much of args has been sent to the client. */
  sent: number;
  state: 'waiting' | 'open' | 'closed';
}

type OpenBlock = { kind: 'text' | 'thinking'; index: number } | { kind: 'tool'; index: number; tool: number };

export class MessagesStreamTranslator {
  private readonly id: string;
  private started = false;
  private ended = false;
  private nextBlock = 0;
  private open: OpenBlock | null = null;
  private readonly tools = new Map<number, ToolState>();
  private readonly pending: Item[] = [];
  private finishReason: string | null = null;
  private matchedStop: unknown = null;
  private usage: ChatUsage | null = null;
  private out = '';

  constructor(private readonly options: MessagesStreamOptions) {
    this.id = options.id ?? newMessageId();
  }

  /** True once message_stop or an error event has been produced. */
  get isEnded(): boolean {
    return this.ended;
  }

  /** One parsed upstream `data:` event -> the SSE text to write (often several events, or none). */
  push(chunk: unknown): string {
    if (this.ended || !isRecord(chunk)) return '';
    const data = chunk as ChatChunk;
    if (data.error !== undefined && data.error !== null) return this.fail('api_error', inBandErrorMessage(data.error));
    this.start();
    const choice = data.choices?.find((c) => (c?.index ?? 0) === 0);
    const delta = choice?.delta;
    if (delta) {
      const reasoning = delta.reasoning_content ?? delta.reasoning;
      if (typeof reasoning === 'string' && reasoning !== '') this.onItem({ kind: 'thinking', text: reasoning });
      if (typeof delta.content === 'string' && delta.content !== '') this.onItem({ kind: 'text', text: delta.content });
      if (Array.isArray(delta.tool_calls)) {
        delta.tool_calls.forEach((call, i) => {
          this.onToolDelta(call, i);
        });
      }
    }
    if (typeof choice?.finish_reason === 'string') {
      this.finishReason = choice.finish_reason;
      this.matchedStop = choice.stop_reason ?? null;
    }
    if (isRecord(data.usage)) this.usage = data.usage;
    return this.take();
  }

  /** The upstream ended ([DONE] or end of body): the closing events, or an error event if it ended early. */
  finish(): string {
    if (this.ended) return '';
    if (!this.started) return this.fail('api_error', 'the upstream ended the stream without sending anything');
    if (this.finishReason === null) return this.fail('api_error', 'the upstream stream ended before the answer was finished');
    this.drain(true);
    if (this.ended) return this.take(); // drain failed the stream
    this.closeOpen();
    for (const [, tool] of this.tools) {
      if (!validArgs(tool.args)) {
        return this.fail('api_error', `the upstream's arguments for tool "${tool.name ?? '?'}" are not a JSON object`);
      }
    }
    const hasToolUse = this.tools.size > 0;
    const { stop_reason, stop_sequence } = stopReasonOf(this.finishReason, this.matchedStop, this.options.stopSequences, hasToolUse);
    this.emit('message_delta', { type: 'message_delta', delta: { stop_reason, stop_sequence }, usage: usageOf(this.usage) });
    this.emit('message_stop', { type: 'message_stop' });
    this.ended = true;
    return this.take();
  }

  /** Ends the stream with Anthropic's error event (an upstream failure after the first byte). */
  fail(type: AnthropicErrorType, message: string): string {
    this.end(type, message);
    return this.take();
  }

  private end(type: AnthropicErrorType, message: string) {
    if (this.ended) return;
    this.ended = true;
    this.emit('error', { type: 'error', error: { type, message } });
  }

  private start() {
    if (this.started) return;
    this.started = true;
    const message = {
      id: this.id,
      type: 'message',
      role: 'assistant',
      model: this.options.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      // Chat streams report usage only at their end: message_delta carries the real counts.
      usage: { input_tokens: 0, output_tokens: 0 },
    };
    this.emit('message_start', { type: 'message_start', message });
  }

  private onToolDelta(call: unknown, position: number) {
    if (!isRecord(call)) return;
    const index = typeof call.index === 'number' ? call.index : position;
    let tool = this.tools.get(index);
    if (!tool) {
      tool = { args: '', sent: 0, state: 'waiting' };
      this.tools.set(index, tool);
    }
    if (typeof call.id === 'string' && call.id !== '' && tool.id === undefined) tool.id = call.id;
    const fn = isRecord(call.function) ? call.function : {};
    if (typeof fn.name === 'string' && fn.name !== '' && tool.name === undefined) tool.name = fn.name;
    if (typeof fn.arguments === 'string') tool.args += fn.arguments;
    this.onItem({ kind: 'tool', index });
  }

  private onItem(item: Item) {
    if (this.isForOpen(item)) this.sendInto(item);
    else this.pending.push(item);
    this.drain(false);
  }

  /** Replays waiting items while the open block allows it; `force` closes whatever blocks (the end). */
  private drain(force: boolean) {
    while (this.pending.length > 0 && !this.ended) {
      const head = this.pending[0]!;
      if (this.isForOpen(head)) {
        this.sendInto(head);
        this.pending.shift();
        continue;
      }
      if (!force && this.open?.kind === 'tool' && !this.openToolComplete()) return;
      if (head.kind === 'tool') {
        const tool = this.tools.get(head.index)!;
        if (tool.state === 'closed') {
          this.lateArguments(tool);
          this.pending.shift();
          continue;
        }
        if (tool.name === undefined) {
          if (!force) return;
          this.end('api_error', 'the upstream streamed a tool call without a function name');
          return;
        }
      }
      this.closeOpen();
      this.startBlock(head);
      this.pending.shift();
    }
  }

  /** Arguments for a tool block already closed: harmless whitespace, or an upstream out of order. */
  private lateArguments(tool: ToolState) {
    const late = tool.args.slice(tool.sent);
    tool.sent = tool.args.length;
    if (late.trim() !== '') this.end('api_error', `the upstream streamed arguments for tool "${tool.name}" after they were complete`);
  }

  private isForOpen(item: Item): boolean {
    const open = this.open;
    if (open === null) return false;
    return item.kind === 'tool' ? open.kind === 'tool' && open.tool === item.index : open.kind === item.kind;
  }

  private openToolComplete(): boolean {
    const open = this.open;
    if (open?.kind !== 'tool') return true;
    const args = this.tools.get(open.tool)!.args;
    return args.trim() !== '' && parseJsonOrUndefined(args) !== undefined;
  }

  private startBlock(item: Item) {
    const index = this.nextBlock++;
    if (item.kind === 'tool') {
      const tool = this.tools.get(item.index)!;
      tool.id ??= newToolUseId();
      tool.state = 'open';
      this.open = { kind: 'tool', index, tool: item.index };
      this.emit('content_block_start', {
        type: 'content_block_start',
        index,
        content_block: { type: 'tool_use', id: tool.id, name: tool.name, input: {} },
      });
    } else {
      this.open = { kind: item.kind, index };
      const block = item.kind === 'text' ? { type: 'text', text: '' } : { type: 'thinking', thinking: '', signature: '' };
      this.emit('content_block_start', { type: 'content_block_start', index, content_block: block });
    }
    this.sendInto(item);
  }

  private sendInto(item: Item) {
    const index = this.open!.index;
    if (item.kind === 'tool') {
      const tool = this.tools.get(item.index)!;
      const piece = tool.args.slice(tool.sent);
      tool.sent = tool.args.length;
      if (piece !== '') this.delta(index, { type: 'input_json_delta', partial_json: piece });
    } else if (item.kind === 'text') {
      this.delta(index, { type: 'text_delta', text: item.text });
    } else {
      this.delta(index, { type: 'thinking_delta', thinking: item.text });
    }
  }

  private closeOpen() {
    const open = this.open;
    if (open === null) return;
    if (open.kind === 'tool') this.tools.get(open.tool)!.state = 'closed';
    this.emit('content_block_stop', { type: 'content_block_stop', index: open.index });
    this.open = null;
  }

  private delta(index: number, delta: object) {
    this.emit('content_block_delta', { type: 'content_block_delta', index, delta });
  }

  private emit(event: string, data: object) {
    this.out += `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  }

  private take(): string {
    const out = this.out;
    this.out = '';
    return out;
  }
}

/** Empty arguments mean "no input"; anything else must be a JSON object, as tool_use.input is. */
function validArgs(args: string): boolean {
  return args.trim() === '' || isRecord(parseJsonOrUndefined(args));
}
