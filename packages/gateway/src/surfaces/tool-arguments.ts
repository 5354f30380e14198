/**
 * Tool call arguments as an object: OpenAI servers send a JSON string, Ollama an object,
 * some servers an empty string for a call without arguments. Anything that is not a JSON
 * object is an upstream fault (UpstreamAnswerError): Anthropic's tool_use.input and Ollama's
 * arguments are objects, and a client must not get a call with its arguments silently lost.
 */
import { isRecord, parseJsonOrUndefined } from './read-fields.ts';
import { UpstreamAnswerError } from './upstream-answer-error.ts';

export function toolInput(args: unknown, name: string): Record<string, unknown> {
  if (args === undefined || args === null || args === '') return {};
  const value = typeof args === 'string' ? parseJsonOrUndefined(args) : args;
  if (!isRecord(value)) throw new UpstreamAnswerError(`the upstream's arguments for tool "${name}" are not a JSON object`);
  return value;
}
