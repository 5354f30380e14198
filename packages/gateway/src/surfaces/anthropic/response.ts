/**
 * A chat completion -> the Anthropic Message a /v1/messages client expects. Pure. An answer
 * that is not a chat completion, or tool arguments that are not a JSON object, throw
 * UpstreamAnswerError: a client must never get a Message that silently lost a tool call.
 */
import { randomBytes } from 'node:crypto';
import type { ChatChoice, ChatCompletion, ChatUsage } from '../chat-types.ts';
import { isRecord } from '../read-fields.ts';
import { toolInput } from '../tool-arguments.ts';
import { UpstreamAnswerError } from '../upstream-answer-error.ts';
import type { AnthropicContentBlock, AnthropicMessage, AnthropicStopReason, AnthropicUsage } from './anthropic-types.ts';

export interface MessageAnswerOptions {
  /** The model the request was resolved to (what x-selected-model says). */
  model: string;
  /** The request's stop_sequences, to tell stop_sequence from end_turn. */
  stopSequences: readonly string[];
  id?: string;
}

/** Anthropic ids are "msg_" + 24 base62-ish characters; clients only treat them as opaque. */
export function newMessageId(): string {
  return `msg_${randomBytes(18).toString('base64url')}`;
}

export function newToolUseId(): string {
  return `toolu_${randomBytes(18).toString('base64url')}`;
}

export function chatCompletionToMessage(completion: unknown, options: MessageAnswerOptions): AnthropicMessage {
  const choice = (completion as ChatCompletion | null)?.choices?.[0];
  if (!isRecord(completion) || !isRecord(choice) || !isRecord(choice.message)) {
    throw new UpstreamAnswerError('the upstream answer is not a chat completion (no choices[0].message)');
  }
  const message = choice.message as NonNullable<ChatChoice['message']>;
  const content: AnthropicContentBlock[] = [];
  const reasoning = message.reasoning_content ?? message.reasoning;
  if (typeof reasoning === 'string' && reasoning !== '') content.push({ type: 'thinking', thinking: reasoning, signature: '' });
  if (typeof message.content === 'string' && message.content !== '') content.push({ type: 'text', text: message.content });
  for (const call of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
    const name = call?.function?.name;
    if (typeof name !== 'string' || name === '') throw new UpstreamAnswerError('the upstream answered a tool call without a function name');
    content.push({ type: 'tool_use', id: call.id || newToolUseId(), name, input: toolInput(call.function?.arguments, name) });
  }
  const hasToolUse = content.some((block) => block.type === 'tool_use');
  return {
    id: options.id ?? newMessageId(),
    type: 'message',
    role: 'assistant',
    model: options.model,
    content,
    ...stopReasonOf(choice.finish_reason, choice.stop_reason, options.stopSequences, hasToolUse),
    usage: usageOf(completion.usage as ChatUsage | null | undefined),
  };
}

/**
 * finish_reason -> stop_reason. "stop" is a stop sequence only when the server says which
 * one matched (vLLM's stop_reason) and it is one the client asked for; tool calls win over
 * a "stop" some servers report with them.
 */
export function stopReasonOf(
  finishReason: unknown,
  matched: unknown,
  stopSequences: readonly string[],
  hasToolUse: boolean,
): { stop_reason: AnthropicStopReason; stop_sequence: string | null } {
  if (finishReason === 'length') return { stop_reason: 'max_tokens', stop_sequence: null };
  if (finishReason === 'tool_calls' || finishReason === 'function_call' || hasToolUse)
    return { stop_reason: 'tool_use', stop_sequence: null };
  if (finishReason === 'content_filter') return { stop_reason: 'refusal', stop_sequence: null };
  if (typeof matched === 'string' && stopSequences.includes(matched)) return { stop_reason: 'stop_sequence', stop_sequence: matched };
  return { stop_reason: 'end_turn', stop_sequence: null };
}

/** Anthropic counts cache reads apart from input_tokens; OpenAI includes them in prompt_tokens. */
export function usageOf(usage: ChatUsage | null | undefined): AnthropicUsage {
  const prompt = count(usage?.prompt_tokens);
  const cached = Math.min(count(usage?.prompt_tokens_details?.cached_tokens), prompt);
  const result: AnthropicUsage = { input_tokens: prompt - cached, output_tokens: count(usage?.completion_tokens) };
  if (cached > 0) result.cache_read_input_tokens = cached;
  return result;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}
