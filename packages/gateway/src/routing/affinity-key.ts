/**
 * The cache-affinity key of a request: what should bring it back to the node that holds
 * its prompt's KV cache.
 *
 *  - `x-session-id`, when the client sends one: the client knows its conversations best.
 *  - Otherwise a hash of the prompt's stable prefix — the part that every later turn of
 *    the same conversation repeats verbatim:
 *      chat / Anthropic messages / Responses input: the system prompt (system, developer
 *      messages, Anthropic `system`, Responses `instructions`) and the first message after
 *      it. Not the system prompt alone: conversations that share one long system prompt
 *      would all map to one node; with the first user message each conversation keys on
 *      its own and the shared system prompt is cached once per node.
 *      completions `prompt`, embeddings `input`: the first PROMPT_PREFIX_CHARS characters
 *      (a growing prompt keeps its key once it is that long).
 *  - null when the request carries none of these: route it on load alone.
 */
import { createHash } from 'node:crypto';

/** A shared preamble of a few paragraphs, short enough that turn 2 of a short chat still matches turn 1. */
export const PROMPT_PREFIX_CHARS = 512;
/** Bounds the hashing cost of a huge first message: the prefix that decides a node is far shorter. */
export const MAX_KEYED_CHARS = 32 * 1024;
const MAX_SESSION_ID_CHARS = 256;
const SYSTEM_ROLES = new Set(['system', 'developer']);

export function affinityKey(request: { sessionId?: string | null; body: unknown }): string | null {
  const session = request.sessionId?.trim();
  if (session) return `session:${session.slice(0, MAX_SESSION_ID_CHARS)}`;
  const prefix = stablePrefix(request.body);
  if (prefix === null || prefix === '') return null;
  return `prefix:${createHash('sha1').update(prefix.slice(0, MAX_KEYED_CHARS)).digest('hex')}`;
}

function stablePrefix(body: unknown): string | null {
  if (!isRecord(body)) return null;
  const system = [textOf(body.system), textOf(body.instructions)].filter((t) => t !== '').join('\n');
  if (Array.isArray(body.messages)) return conversationPrefix(system, body.messages);
  if (Array.isArray(body.input) && body.input.some((item) => isRecord(item) && 'role' in item)) {
    return conversationPrefix(system, body.input);
  }
  const text = firstText(body.prompt) ?? firstText(body.input);
  if (text === null) return system === '' ? null : system;
  return `${system}\n${text.slice(0, PROMPT_PREFIX_CHARS)}`;
}

/** The leading system messages and the first message after them, with their roles. */
function conversationPrefix(system: string, messages: readonly unknown[]): string {
  const parts = system === '' ? [] : [`system:${system}`];
  for (const message of messages) {
    if (!isRecord(message)) continue;
    const role = typeof message.role === 'string' ? message.role : '';
    parts.push(`${role}:${textOf(message.content)}`);
    if (!SYSTEM_ROLES.has(role)) break;
  }
  return parts.join('\n');
}

/**
 * A string, or the text of content parts ([{type:"text",text}…]); anything else as JSON. Every
 * string cut to MAX_KEYED_CHARS first: only that much of the prefix is hashed, and an image
 * part's base64 is megabytes, which JSON.stringify would copy whole on the event loop. The
 * key is the same as from the whole text: what is cut lies past the hashed part.
 */
function textOf(content: unknown): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return clip(content);
  if (Array.isArray(content))
    return content.map((part) => (isRecord(part) && typeof part.text === 'string' ? clip(part.text) : jsonOf(part))).join('');
  return jsonOf(content);
}

function clip(text: string): string {
  return text.length > MAX_KEYED_CHARS ? text.slice(0, MAX_KEYED_CHARS) : text;
}

/** JSON of a value whose strings are clipped as they are written. */
function jsonOf(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => (typeof item === 'string' ? clip(item) : item)) ?? '';
}

/** `prompt` / `input` as a string, the first string of a list, or a token list's start. */
function firstText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value) || value.length === 0) return null;
  if (typeof value[0] === 'string') return value[0];
  if (typeof value[0] === 'number') return JSON.stringify(value.slice(0, PROMPT_PREFIX_CHARS));
  if (Array.isArray(value[0])) return JSON.stringify(value[0].slice(0, PROMPT_PREFIX_CHARS));
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
