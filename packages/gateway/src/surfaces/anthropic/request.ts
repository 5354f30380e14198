/**
 * An Anthropic Messages request -> the chat-completions request a node without a native
 * /v1/messages answers. Pure. Bad input throws GatewayError('invalid_request') naming the
 * field, rendered by the caller as Anthropic's invalid_request_error.
 *
 * What does not cross: `metadata` (no counterpart), `thinking` (servers switch reasoning on
 * per model, not per request), cache_control marks, and prior thinking blocks (chat
 * templates drop earlier reasoning anyway). Server tools and PDF documents have no
 * chat-completions form, so they are refused rather than silently lost.
 */
import type { ChatContentPart, ChatMessage, ChatRequest, ChatTool, ChatToolCall, ChatToolChoice } from '../chat-types.ts';
import {
  invalid,
  isRecord,
  optionalBoolean,
  optionalInteger,
  optionalNumber,
  optionalStringList,
  requireArray,
  requireRecord,
  requireString,
  type JsonRecord,
} from '../read-fields.ts';

export interface MessagesTranslationOptions {
  /** top_k is not an OpenAI field: servers that are not known to take it would reject the request. */
  acceptsTopK: boolean;
}

export interface TranslatedMessagesRequest {
  chat: ChatRequest;
  /** Needed again to tell stop_sequence from end_turn in the answer. */
  stopSequences: string[];
  stream: boolean;
}

export function messagesToChatRequest(body: unknown, options: MessagesTranslationOptions): TranslatedMessagesRequest {
  const request = requireRecord(body, 'body');
  const model = requireString(request.model, 'model');
  const maxTokens = optionalInteger(request, 'max_tokens');
  if (maxTokens === undefined || maxTokens < 1) throw invalid('max_tokens', 'is required and must be a positive integer');
  const messages = requireArray(request.messages, 'messages');
  if (messages.length === 0) throw invalid('messages', 'must not be empty');

  const chatMessages: ChatMessage[] = [];
  const system = systemText(request.system);
  if (system !== undefined) chatMessages.push({ role: 'system', content: system });
  messages.forEach((message, i) => {
    chatMessages.push(...translateMessage(message, `messages.${i}`));
  });

  const stopSequences = optionalStringList(request, 'stop_sequences') ?? [];
  const stream = optionalBoolean(request, 'stream') ?? false;
  const chat: ChatRequest = { model, messages: chatMessages, max_tokens: maxTokens };
  copyNumber(request, 'temperature', chat);
  copyNumber(request, 'top_p', chat);
  const topK = optionalInteger(request, 'top_k');
  if (topK !== undefined && options.acceptsTopK) chat.top_k = topK;
  if (stopSequences.length > 0) chat.stop = stopSequences;
  if (request.tools !== undefined) chat.tools = translateTools(request.tools);
  if (request.tool_choice !== undefined) Object.assign(chat, translateToolChoice(request.tool_choice));
  if (stream) {
    chat.stream = true;
    // The Anthropic stream reports usage at its end; chat streams only do when asked.
    chat.stream_options = { include_usage: true };
  }
  return { chat, stopSequences, stream };
}

function copyNumber(request: JsonRecord, key: 'temperature' | 'top_p', chat: ChatRequest) {
  const value = optionalNumber(request, key);
  if (value !== undefined) chat[key] = value;
}

function systemText(system: unknown): string | undefined {
  if (system === undefined || system === null) return undefined;
  if (typeof system === 'string') return system === '' ? undefined : system;
  const blocks = requireArray(system, 'system');
  const texts = blocks.map((block, i) => {
    const record = requireRecord(block, `system.${i}`);
    if (record.type !== 'text') throw invalid(`system.${i}.type`, 'system blocks must be text');
    return requireString(record.text, `system.${i}.text`);
  });
  return texts.length === 0 ? undefined : texts.join('\n');
}

function translateMessage(value: unknown, param: string): ChatMessage[] {
  const message = requireRecord(value, param);
  const role = message.role;
  if (role !== 'user' && role !== 'assistant') throw invalid(`${param}.role`, 'must be "user" or "assistant"');
  if (typeof message.content === 'string') return [{ role, content: message.content }];
  const blocks = requireArray(message.content, `${param}.content`).map((block, i) => requireRecord(block, `${param}.content.${i}`));
  return role === 'assistant' ? [assistantMessage(blocks, param)] : userMessages(blocks, param);
}

function assistantMessage(blocks: JsonRecord[], param: string): ChatMessage {
  let text = '';
  const toolCalls: ChatToolCall[] = [];
  blocks.forEach((block, i) => {
    const where = `${param}.content.${i}`;
    if (block.type === 'text') text += requireString(block.text, `${where}.text`);
    else if (block.type === 'tool_use') {
      toolCalls.push({
        id: requireString(block.id, `${where}.id`),
        type: 'function',
        function: { name: requireString(block.name, `${where}.name`), arguments: JSON.stringify(block.input ?? {}) },
      });
    } else if (block.type !== 'thinking' && block.type !== 'redacted_thinking') {
      throw invalid(`${where}.type`, `"${String(block.type)}" is not supported in assistant messages on this node`);
    }
  });
  if (toolCalls.length === 0) return { role: 'assistant', content: text };
  return { role: 'assistant', content: text === '' ? null : text, tool_calls: toolCalls };
}

/**
 * Tool results become tool messages, which chat completions wants right after the assistant
 * turn that called the tools, so they go before the rest of the user's content.
 */
function userMessages(blocks: JsonRecord[], param: string): ChatMessage[] {
  const toolMessages: ChatMessage[] = [];
  const parts: ChatContentPart[] = [];
  blocks.forEach((block, i) => {
    const where = `${param}.content.${i}`;
    if (block.type === 'tool_result') {
      const { text, images } = toolResultContent(block.content, `${where}.content`);
      toolMessages.push({ role: 'tool', tool_call_id: requireString(block.tool_use_id, `${where}.tool_use_id`), content: text });
      parts.push(...images);
    } else {
      parts.push(contentPart(block, where));
    }
  });
  if (parts.length === 0) return toolMessages;
  return [...toolMessages, { role: 'user', content: collapseText(parts) }];
}

/** Text-only content as one string: many servers' chat templates take nothing else. */
function collapseText(parts: ChatContentPart[]): string | ChatContentPart[] {
  if (!parts.every((part) => part.type === 'text')) return parts;
  return parts.map((part) => (part as { text: string }).text).join('\n');
}

function contentPart(block: JsonRecord, where: string): ChatContentPart {
  if (block.type === 'text') return { type: 'text', text: requireString(block.text, `${where}.text`) };
  if (block.type === 'image') return { type: 'image_url', image_url: { url: imageUrl(block.source, `${where}.source`) } };
  if (block.type === 'document') {
    const source = requireRecord(block.source, `${where}.source`);
    if (source.type === 'text') return { type: 'text', text: requireString(source.data, `${where}.source.data`) };
    throw invalid(`${where}.source.type`, `"${String(source.type)}" documents are not supported on this node (text documents are)`);
  }
  throw invalid(`${where}.type`, `"${String(block.type)}" is not supported in user messages on this node`);
}

function imageUrl(value: unknown, param: string): string {
  const source = requireRecord(value, param);
  if (source.type === 'base64') {
    const mediaType = requireString(source.media_type, `${param}.media_type`);
    return `data:${mediaType};base64,${requireString(source.data, `${param}.data`)}`;
  }
  if (source.type === 'url') return requireString(source.url, `${param}.url`);
  throw invalid(`${param}.type`, 'must be "base64" or "url"');
}

function toolResultContent(content: unknown, param: string): { text: string; images: ChatContentPart[] } {
  if (content === undefined || content === null) return { text: '', images: [] };
  if (typeof content === 'string') return { text: content, images: [] };
  const texts: string[] = [];
  const images: ChatContentPart[] = [];
  requireArray(content, param).forEach((item, i) => {
    const part = contentPart(requireRecord(item, `${param}.${i}`), `${param}.${i}`);
    if (part.type === 'text') texts.push(part.text);
    else images.push(part); // a tool message carries text only: images follow as user content
  });
  return { text: texts.join('\n'), images };
}

function translateTools(value: unknown): ChatTool[] {
  return requireArray(value, 'tools').map((item, i) => {
    const tool = requireRecord(item, `tools.${i}`);
    if (tool.type !== undefined && tool.type !== 'custom') {
      throw invalid(`tools.${i}.type`, `server tool "${String(tool.type)}" is not supported on this node`);
    }
    const fn: ChatTool['function'] = { name: requireString(tool.name, `tools.${i}.name`) };
    if (typeof tool.description === 'string') fn.description = tool.description;
    fn.parameters = isRecord(tool.input_schema) ? tool.input_schema : { type: 'object', properties: {} };
    return { type: 'function', function: fn };
  });
}

function translateToolChoice(value: unknown): { tool_choice: ChatToolChoice; parallel_tool_calls?: boolean } {
  const choice = requireRecord(value, 'tool_choice');
  const parallel = choice.disable_parallel_tool_use === true ? { parallel_tool_calls: false } : {};
  switch (choice.type) {
    case 'auto':
      return { tool_choice: 'auto', ...parallel };
    case 'any':
      return { tool_choice: 'required', ...parallel };
    case 'none':
      return { tool_choice: 'none' };
    case 'tool':
      return { tool_choice: { type: 'function', function: { name: requireString(choice.name, 'tool_choice.name') } }, ...parallel };
    default:
      throw invalid('tool_choice.type', 'must be "auto", "any", "tool" or "none"');
  }
}
