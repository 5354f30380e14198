/**
 * Ollama's own API as the translators read and write it (ollama/ollama docs/api.md). Durations
 * are nanoseconds; tool call arguments are JSON objects, not strings.
 */

export interface OllamaToolCall {
  id?: string;
  function: { index?: number; name: string; arguments: Record<string, unknown> };
}

export interface OllamaMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  thinking?: string;
  images?: string[];
  tool_calls?: OllamaToolCall[];
  tool_name?: string;
  tool_call_id?: string;
}

export interface OllamaMetrics {
  total_duration: number;
  load_duration: number;
  prompt_eval_count: number;
  prompt_eval_duration: number;
  eval_count: number;
  eval_duration: number;
}

export type OllamaDoneReason = 'stop' | 'length';

export interface OllamaChatResponse extends Partial<OllamaMetrics> {
  model: string;
  created_at: string;
  message: OllamaMessage;
  done: boolean;
  done_reason?: OllamaDoneReason;
}

export interface OllamaGenerateResponse extends Partial<OllamaMetrics> {
  model: string;
  created_at: string;
  response: string;
  thinking?: string;
  done: boolean;
  done_reason?: OllamaDoneReason;
}

export interface OllamaModelDetails {
  parent_model: string;
  format: string;
  family: string;
  families: string[] | null;
  parameter_size: string;
  quantization_level: string;
}

/** One entry of /api/tags (and, with expires_at and size_vram, of /api/ps). */
export interface OllamaModelEntry {
  name: string;
  model: string;
  modified_at?: string;
  size: number;
  digest: string;
  details: OllamaModelDetails;
  expires_at?: string;
  size_vram?: number;
  [field: string]: unknown;
}

/** When the request began and the clock, for Ollama's durations. */
export interface OllamaTiming {
  startedAtMs: number;
  clock: () => number;
}
