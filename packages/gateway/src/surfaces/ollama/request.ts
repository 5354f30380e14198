/**
 * Ollama API requests -> the OpenAI requests a node without Ollama's API answers. Pure; bad
 * input throws GatewayError('invalid_request') naming the field (rendered as {"error":"…"}).
 *
 *   /api/chat        -> /v1/chat/completions
 *   /api/generate    -> /v1/chat/completions (Ollama applies the model's chat template to a
 *                       plain prompt, and so does a chat request), or /v1/completions for
 *                       `raw` prompts and fill-in-the-middle (`suffix`), which skip the template
 *   /api/embed       -> /v1/embeddings
 *   /api/embeddings  -> /v1/embeddings (the legacy single-prompt form)
 *
 * Ollama streams unless told not to: `stream` absent means true. Options without an OpenAI
 * counterpart (num_ctx, repeat_penalty, mirostat…) are server settings and do not cross,
 * nor do keep_alive, think and the deprecated `context`.
 */
import type { ChatContentPart, ChatMessage, ChatRequest, ChatToolCall } from '../chat-types.ts';
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

export interface OllamaTranslationOptions {
  /** top_k is not an OpenAI field: only servers known to take it get it. */
  acceptsTopK: boolean;
}

export interface TranslatedOllamaRequest {
  path: '/v1/chat/completions' | '/v1/completions' | '/v1/embeddings';
  body: JsonRecord;
  stream: boolean;
}

export function ollamaChatToChatRequest(value: unknown, options: OllamaTranslationOptions): TranslatedOllamaRequest {
  const request = requireRecord(value, 'body');
  const model = requireString(request.model, 'model');
  const messages = translateMessages(requireArray(request.messages ?? [], 'messages'));
  const chat: ChatRequest = { model, messages };
  if (request.tools !== undefined && request.tools !== null) chat.tools = requireArray(request.tools, 'tools') as ChatRequest['tools'];
  return finish(chat, request, options, '/v1/chat/completions');
}

export function ollamaGenerateToUpstream(value: unknown, options: OllamaTranslationOptions): TranslatedOllamaRequest {
  const request = requireRecord(value, 'body');
  const model = requireString(request.model, 'model');
  const prompt = request.prompt === undefined ? '' : requireString(request.prompt, 'prompt');
  const images = request.images === undefined || request.images === null ? [] : requireArray(request.images, 'images');
  const raw = optionalBoolean(request, 'raw') ?? false;
  const suffix = request.suffix === undefined || request.suffix === null ? undefined : requireString(request.suffix, 'suffix');
  if (raw || suffix !== undefined) {
    if (images.length > 0) throw invalid('images', 'images need the chat template: not supported with raw or suffix on this node');
    const body: JsonRecord = { model, prompt, ...(suffix !== undefined && suffix !== '' ? { suffix } : {}) };
    return finish(body as unknown as ChatRequest, request, options, '/v1/completions');
  }
  const messages: ChatMessage[] = [];
  if (request.system !== undefined && request.system !== '')
    messages.push({ role: 'system', content: requireString(request.system, 'system') });
  messages.push(userMessage(prompt, images, 'images'));
  return finish({ model, messages }, request, options, '/v1/chat/completions');
}

export function ollamaEmbedToEmbeddingsRequest(value: unknown): TranslatedOllamaRequest {
  const request = requireRecord(value, 'body');
  const model = requireString(request.model, 'model');
  const input = request.input;
  if (typeof input !== 'string' && !(Array.isArray(input) && input.every((item) => typeof item === 'string'))) {
    throw invalid('input', 'must be a string or a list of strings');
  }
  const body: JsonRecord = { model, input, encoding_format: 'float' };
  const dimensions = optionalInteger(request, 'dimensions');
  if (dimensions !== undefined) body.dimensions = dimensions;
  return { path: '/v1/embeddings', body, stream: false };
}

/** The legacy /api/embeddings: one `prompt`, one vector back. */
export function ollamaEmbeddingsToEmbeddingsRequest(value: unknown): TranslatedOllamaRequest {
  const request = requireRecord(value, 'body');
  const model = requireString(request.model, 'model');
  const prompt = requireString(request.prompt ?? '', 'prompt');
  return { path: '/v1/embeddings', body: { model, input: prompt, encoding_format: 'float' }, stream: false };
}

function finish(
  body: ChatRequest,
  request: JsonRecord,
  options: OllamaTranslationOptions,
  path: TranslatedOllamaRequest['path'],
): TranslatedOllamaRequest {
  Object.assign(body, sampling(request.options, options));
  if (request.format !== undefined && request.format !== null && request.format !== '')
    body.response_format = responseFormat(request.format);
  const stream = optionalBoolean(request, 'stream') ?? true;
  if (stream) {
    body.stream = true;
    // The done line carries the counts, and chat streams only report usage when asked.
    body.stream_options = { include_usage: true };
  }
  return { path, body: body as unknown as JsonRecord, stream };
}

function sampling(value: unknown, options: OllamaTranslationOptions): Partial<ChatRequest> {
  if (value === undefined || value === null) return {};
  const opts = requireRecord(value, 'options');
  const out: Partial<ChatRequest> = {};
  const copy = (from: string, to: 'temperature' | 'top_p' | 'seed' | 'presence_penalty' | 'frequency_penalty') => {
    const number = optionalNumber(opts, from, `options.${from}`);
    if (number !== undefined) out[to] = number;
  };
  copy('temperature', 'temperature');
  copy('top_p', 'top_p');
  copy('seed', 'seed');
  copy('presence_penalty', 'presence_penalty');
  copy('frequency_penalty', 'frequency_penalty');
  const topK = optionalInteger(opts, 'top_k', 'options.top_k');
  if (topK !== undefined && options.acceptsTopK) out.top_k = topK;
  // num_predict -1 (infinite) and -2 (fill the context) have no OpenAI form: no limit then.
  const numPredict = optionalInteger(opts, 'num_predict', 'options.num_predict');
  if (numPredict !== undefined && numPredict > 0) out.max_tokens = numPredict;
  const stop = optionalStringList(opts, 'stop', 'options.stop');
  if (stop !== undefined && stop.length > 0) out.stop = stop;
  return out;
}

function responseFormat(format: unknown): ChatRequest['response_format'] {
  if (format === 'json') return { type: 'json_object' };
  if (isRecord(format)) return { type: 'json_schema', json_schema: { name: 'ollama_format', schema: format } };
  throw invalid('format', 'must be "json" or a JSON schema object');
}

function translateMessages(messages: unknown[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  /** Ids of the last assistant turn's tool calls not answered yet, with their names. */
  let open: Array<{ id: string; name: string }> = [];
  messages.forEach((value, i) => {
    const param = `messages.${i}`;
    const message = requireRecord(value, param);
    const content = message.content === undefined || message.content === null ? '' : requireString(message.content, `${param}.content`);
    const images = message.images === undefined || message.images === null ? [] : requireArray(message.images, `${param}.images`);
    switch (message.role) {
      case 'system':
        out.push({ role: 'system', content });
        return;
      case 'user':
        out.push(userMessage(content, images, `${param}.images`));
        return;
      case 'assistant': {
        const calls = toolCalls(message.tool_calls, i, `${param}.tool_calls`);
        open = calls.map((call) => ({ id: call.id, name: call.function.name }));
        out.push(
          calls.length > 0
            ? { role: 'assistant', content: content === '' ? null : content, tool_calls: calls }
            : { role: 'assistant', content },
        );
        return;
      }
      case 'tool':
        out.push({ role: 'tool', tool_call_id: answeredCall(message, open, i), content });
        return;
      default:
        throw invalid(`${param}.role`, 'must be "system", "user", "assistant" or "tool"');
    }
  });
  return out;
}

/** Ollama names the tool a result is for (tool_name), or gives its call id; OpenAI needs the id. */
function answeredCall(message: JsonRecord, open: Array<{ id: string; name: string }>, i: number): string {
  if (typeof message.tool_call_id === 'string' && message.tool_call_id !== '') {
    const at = open.findIndex((call) => call.id === message.tool_call_id);
    if (at >= 0) open.splice(at, 1);
    return message.tool_call_id;
  }
  const at = typeof message.tool_name === 'string' ? open.findIndex((call) => call.name === message.tool_name) : -1;
  const call = open.splice(Math.max(at, 0), 1)[0];
  return call?.id ?? `call_${i}`;
}

function toolCalls(value: unknown, messageIndex: number, param: string): ChatToolCall[] {
  if (value === undefined || value === null) return [];
  return requireArray(value, param).map((item, j) => {
    const call = requireRecord(item, `${param}.${j}`);
    const fn = requireRecord(call.function, `${param}.${j}.function`);
    const args = fn.arguments ?? {};
    return {
      id: typeof call.id === 'string' && call.id !== '' ? call.id : `call_${messageIndex}_${j}`,
      type: 'function',
      function: {
        name: requireString(fn.name, `${param}.${j}.function.name`),
        arguments: typeof args === 'string' ? args : JSON.stringify(args),
      },
    };
  });
}

function userMessage(content: string, images: unknown[], param: string): ChatMessage {
  if (images.length === 0) return { role: 'user', content };
  const parts: ChatContentPart[] = content === '' ? [] : [{ type: 'text', text: content }];
  images.forEach((image, i) => {
    parts.push({ type: 'image_url', image_url: { url: dataUrl(requireString(image, `${param}.${i}`)) } });
  });
  return { role: 'user', content: parts };
}

/** Ollama sends bare base64; chat wants a data URL, whose type the image's first bytes tell. */
export function dataUrl(base64: string): string {
  if (base64.startsWith('data:')) return base64;
  const type = base64.startsWith('/9j/')
    ? 'image/jpeg'
    : base64.startsWith('R0lGOD')
      ? 'image/gif'
      : base64.startsWith('UklGR')
        ? 'image/webp'
        : 'image/png';
  return `data:${type};base64,${base64}`;
}
