/**
 * OpenAI answers -> the Ollama API's answers (non-stream). Pure but for the clock the caller
 * passes for Ollama's durations. An answer that cannot be translated throws
 * UpstreamAnswerError, as in the Anthropic translation.
 */
import type { ChatCompletion, ChatUsage } from '../chat-types.ts';
import { isRecord } from '../read-fields.ts';
import { toolInput } from '../tool-arguments.ts';
import { UpstreamAnswerError } from '../upstream-answer-error.ts';
import type {
  OllamaChatResponse,
  OllamaDoneReason,
  OllamaGenerateResponse,
  OllamaMessage,
  OllamaMetrics,
  OllamaTiming,
  OllamaToolCall,
} from './ollama-types.ts';

const NS_PER_MS = 1_000_000;

export function chatCompletionToOllamaChat(completion: unknown, model: string, timing: OllamaTiming): OllamaChatResponse {
  const { message: upstream, finishReason, usage } = firstChoice(completion);
  const message: OllamaMessage = { role: 'assistant', content: typeof upstream.content === 'string' ? upstream.content : '' };
  const thinking = upstream.reasoning_content ?? upstream.reasoning;
  if (typeof thinking === 'string' && thinking !== '') message.thinking = thinking;
  const calls = ollamaToolCalls(upstream.tool_calls);
  if (calls.length > 0) message.tool_calls = calls;
  return {
    model,
    created_at: createdAt(timing),
    message,
    done: true,
    done_reason: doneReason(finishReason),
    ...metrics(usage, timing, null),
  };
}

/** A chat completion or a text completion (raw / suffix prompts) -> /api/generate's answer. */
export function completionToOllamaGenerate(completion: unknown, model: string, timing: OllamaTiming): OllamaGenerateResponse {
  const choice = (completion as { choices?: Array<{ text?: unknown }> } | null)?.choices?.[0];
  if (isRecord(choice) && typeof choice.text === 'string') {
    const usage = (completion as { usage?: ChatUsage }).usage;
    const finish = (choice as { finish_reason?: unknown }).finish_reason;
    return {
      model,
      created_at: createdAt(timing),
      response: choice.text,
      done: true,
      done_reason: doneReason(finish),
      ...metrics(usage, timing, null),
    };
  }
  const chat = chatCompletionToOllamaChat(completion, model, timing);
  const { message, ...rest } = chat;
  // Added to the rest, not `{ ...rest, response }`: no spread-then-new-property per request
  // (docs/architecture.md).
  const answer = rest as OllamaGenerateResponse;
  answer.response = message.content;
  if (message.thinking) answer.thinking = message.thinking;
  return answer;
}

export function embeddingsToOllamaEmbed(answer: unknown, model: string, timing: OllamaTiming) {
  const vectors = embeddingVectors(answer);
  const usage = (answer as { usage?: ChatUsage }).usage;
  return {
    model,
    embeddings: vectors,
    total_duration: Math.round((timing.clock() - timing.startedAtMs) * NS_PER_MS),
    load_duration: 0,
    prompt_eval_count: count(usage?.prompt_tokens),
  };
}

export function embeddingsToOllamaEmbeddings(answer: unknown): { embedding: number[] } {
  const [first] = embeddingVectors(answer);
  if (!first) throw new UpstreamAnswerError('the upstream answered embeddings without a vector');
  return { embedding: first };
}

/** OpenAI's data[] in index order; base64 vectors (little-endian float32) decoded. */
function embeddingVectors(answer: unknown): number[][] {
  const data = (answer as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new UpstreamAnswerError('the upstream answer is not an embeddings list (no data[])');
  return [...data]
    .sort((a, b) => ((a as { index?: number })?.index ?? 0) - ((b as { index?: number })?.index ?? 0))
    .map((item) => {
      const embedding = (item as { embedding?: unknown })?.embedding;
      if (Array.isArray(embedding) && embedding.every((x) => typeof x === 'number')) return embedding as number[];
      if (typeof embedding === 'string') {
        const bytes = Buffer.from(embedding, 'base64');
        return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 4)));
      }
      throw new UpstreamAnswerError('the upstream answered an embedding that is not a list of numbers');
    });
}

type UpstreamMessage = NonNullable<NonNullable<ChatCompletion['choices']>[number]['message']>;

function firstChoice(completion: unknown): { message: UpstreamMessage; finishReason: unknown; usage: ChatUsage | null | undefined } {
  const choice = (completion as ChatCompletion | null)?.choices?.[0];
  if (!isRecord(completion) || !isRecord(choice) || !isRecord(choice.message)) {
    throw new UpstreamAnswerError('the upstream answer is not a chat completion (no choices[0].message)');
  }
  return { message: choice.message as UpstreamMessage, finishReason: choice.finish_reason, usage: (completion as ChatCompletion).usage };
}

export function ollamaToolCalls(calls: unknown): OllamaToolCall[] {
  if (!Array.isArray(calls)) return [];
  return calls.map((call, index) => {
    const fn = (call as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
    if (typeof fn?.name !== 'string' || fn.name === '')
      throw new UpstreamAnswerError('the upstream answered a tool call without a function name');
    const id = (call as { id?: unknown }).id;
    return {
      ...(typeof id === 'string' && id !== '' ? { id } : {}),
      function: { index, name: fn.name, arguments: toolInput(fn.arguments, fn.name) },
    };
  });
}

/** Ollama reports "stop" for answers that end in tool calls, "length" when cut by num_predict. */
export function doneReason(finishReason: unknown): OllamaDoneReason {
  return finishReason === 'length' ? 'length' : 'stop';
}

/**
 * Counts from the usage, durations from the clock: the whole request, and (streams) the wait
 * for the first token as prompt evaluation, the rest as generation; a non-stream answer has
 * no first-token time, so all of it counts as generation.
 */
export function metrics(usage: ChatUsage | null | undefined, timing: OllamaTiming, firstTokenAtMs: number | null): OllamaMetrics {
  const now = timing.clock();
  const firstAt = firstTokenAtMs ?? timing.startedAtMs;
  return {
    total_duration: ns(now - timing.startedAtMs),
    load_duration: 0,
    prompt_eval_count: count(usage?.prompt_tokens),
    prompt_eval_duration: ns(firstAt - timing.startedAtMs),
    eval_count: count(usage?.completion_tokens),
    eval_duration: ns(now - firstAt),
  };
}

export function createdAt(timing: OllamaTiming): string {
  return new Date(timing.clock()).toISOString();
}

function ns(ms: number): number {
  return Math.max(0, Math.round(ms * NS_PER_MS));
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}
