/**
 * The OpenAI chat-completions wire format, as far as the surface translators build and read
 * it. Upstream answers are typed loosely (every field optional): they come from many servers
 * and are checked field by field where they are read, never trusted.
 */

export type ChatContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string | ChatContentPart[] }
  | { role: 'assistant'; content: string | null; tool_calls?: ChatToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };

export interface ChatTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: unknown };
}

export type ChatToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  seed?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  stop?: string[];
  tools?: ChatTool[];
  tool_choice?: ChatToolChoice;
  parallel_tool_calls?: boolean;
  response_format?: { type: 'json_object' } | { type: 'json_schema'; json_schema: { name: string; schema: unknown } };
  stream?: boolean;
  stream_options?: { include_usage: boolean };
}

/** Usage as servers report it; vLLM and OpenAI add prompt_tokens_details.cached_tokens. */
export interface ChatUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
}

/** One choice of a non-stream answer. */
export interface ChatChoice {
  index?: number;
  message?: {
    role?: string;
    content?: string | null;
    /** vLLM, SGLang and llama.cpp name it reasoning_content; Ollama and newer vLLM `reasoning`. */
    reasoning_content?: string | null;
    reasoning?: string | null;
    tool_calls?: Array<{ id?: string; type?: string; function?: { name?: string; arguments?: string | object } }> | null;
  };
  finish_reason?: string | null;
  /** vLLM: the stop string (or token id) that ended the generation, null at EOS. */
  stop_reason?: string | number | null;
}

export interface ChatCompletion {
  id?: string;
  object?: string;
  created?: number;
  model?: string;
  choices?: ChatChoice[];
  usage?: ChatUsage | null;
}

export interface ChatChunkToolCallDelta {
  index?: number;
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

/** One parsed `data:` event of a chat stream. */
export interface ChatChunk {
  id?: string;
  model?: string;
  choices?: Array<{
    index?: number;
    delta?: {
      role?: string;
      content?: string | null;
      reasoning_content?: string | null;
      reasoning?: string | null;
      tool_calls?: ChatChunkToolCallDelta[] | null;
    };
    /** Text-completion streams (/v1/completions) carry `text` instead of a delta. */
    text?: string | null;
    finish_reason?: string | null;
    stop_reason?: string | number | null;
  }>;
  usage?: ChatUsage | null;
  /** Some servers report a failure in-band, as a data event. */
  error?: unknown;
}

/** The message text of an in-band upstream error event, for the surface's own error shape. */
export function inBandErrorMessage(error: unknown): string {
  if (typeof error === 'string') return error;
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : 'the upstream reported an error mid-stream';
}
