/**
 * POST /v1/messages/count_tokens for models no node counts natively.
 *
 * A node that serves count_tokens (vLLM, llama.cpp) counts with the model's own tokenizer:
 * the request goes there, as is. Where no node serving the model does (Ollama, LM Studio,
 * SGLang and translated nodes), the gateway answers an estimate rather than a 404: clients
 * call count_tokens to decide when to compact a conversation, and a rough count lets them
 * work where an error would not. The answer says it is an estimate in ESTIMATE_HEADER.
 *
 * The estimate leans high, since a client compacting early loses less than one overflowing
 * the context: ASCII text at 4 characters a token, every other character a token of its own
 * (CJK text is about one token per character), a few tokens of chat-template framing per
 * message, and an image at Anthropic's own upper bound for one image.
 */
import type { ChatContentPart, ChatMessage, ChatRequest } from '../chat-types.ts';
import { requireRecord } from '../read-fields.ts';
import { messagesToChatRequest } from './request.ts';

export const ESTIMATE_HEADER = 'x-ai-lb-token-count';
export const ESTIMATE_HEADER_VALUE = 'estimate';

const TOKENS_PER_MESSAGE = 4;
const TOKENS_PER_IMAGE = 1600;

/** The count_tokens answer body for a request: {"input_tokens": N}. Validates like /v1/messages. */
export function estimateCountTokens(body: unknown): { input_tokens: number } {
  // count_tokens takes no max_tokens; the translation wants one.
  const withMax = { max_tokens: 1, ...requireRecord(body, 'body') };
  const { chat } = messagesToChatRequest(withMax, { acceptsTopK: false });
  return { input_tokens: estimateChatTokens(chat) };
}

export function estimateChatTokens(chat: Pick<ChatRequest, 'messages' | 'tools'>): number {
  let tokens = 0;
  for (const message of chat.messages) tokens += TOKENS_PER_MESSAGE + messageTokens(message);
  if (chat.tools && chat.tools.length > 0) tokens += textTokens(JSON.stringify(chat.tools));
  return tokens;
}

function messageTokens(message: ChatMessage): number {
  let tokens = 0;
  if (typeof message.content === 'string') tokens += textTokens(message.content);
  else if (Array.isArray(message.content)) tokens += message.content.reduce((sum, part) => sum + partTokens(part), 0);
  if (message.role === 'assistant' && message.tool_calls) {
    for (const call of message.tool_calls) tokens += textTokens(call.function.name) + textTokens(call.function.arguments);
  }
  return tokens;
}

function partTokens(part: ChatContentPart): number {
  return part.type === 'text' ? textTokens(part.text) : TOKENS_PER_IMAGE;
}

export function textTokens(text: string): number {
  let ascii = 0;
  let other = 0;
  for (const char of text) {
    if (char.charCodeAt(0) < 128) ascii++;
    else other++;
  }
  return Math.ceil(ascii / 4) + other;
}
