import { GatewayError, type OpenAIErrorEnvelope, type OpenAIErrorType } from '@ai-lb/shared';
import { ERROR_RENDERERS, type ErrorFormat } from '../http/error-formats.ts';
import { isAnthropicErrorBody } from '../surfaces/anthropic/errors.ts';
import { isOllamaErrorBody } from '../surfaces/ollama/errors.ts';

export interface UpstreamErrorBody {
  /** What to send the client: the upstream's own bytes when they already are the envelope. */
  body: Buffer;
  /** The message, for logs and for the 502 that names the last error. */
  message: string;
}

/** Longest upstream message carried into an envelope (HTML pages can be huge). */
const MAX_MESSAGE_CHARS = 1000;

/**
 * Upstream error bodies in the OpenAI envelope pass through byte for byte (status, message
 * and the upstream's own `code` preserved). Anything else — FastAPI's {"detail": …},
 * Ollama's {"error": "…"}, plain text, an HTML error page — becomes the envelope with the
 * same status and the upstream's message, so SDKs can still show it. Pure.
 */
export function normalizeUpstreamError(status: number, contentType: string | undefined, raw: Buffer): UpstreamErrorBody {
  const text = raw.toString('utf8');
  const json = parseJson(text);
  const error = (json as { error?: unknown } | undefined)?.error;
  if (error !== null && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') {
    return { body: raw, message: (error as { message: string }).message };
  }
  const message = clip(messageOf(json, text, contentType) || `upstream answered HTTP ${status} without a message`);
  const envelope: OpenAIErrorEnvelope = {
    error: { message, type: errorTypeFor(status), param: null, code: `upstream_${status}` },
  };
  return { body: Buffer.from(JSON.stringify(envelope)), message };
}

function messageOf(json: unknown, text: string, contentType: string | undefined): string {
  if (json !== undefined && json !== null && typeof json === 'object') {
    const record = json as { error?: unknown; detail?: unknown; message?: unknown };
    if (typeof record.error === 'string') return record.error;
    if (typeof record.detail === 'string') return record.detail;
    if (Array.isArray(record.detail)) return record.detail.map(detailItem).join('; ');
    if (typeof record.message === 'string') return record.message;
    return JSON.stringify(json);
  }
  if (/html/i.test(contentType ?? '') || /^\s*<(!doctype|html)/i.test(text)) return htmlText(text);
  return text.trim();
}

/** FastAPI validation items: {"loc": [...], "msg": "...", "type": "..."}. */
function detailItem(item: unknown): string {
  if (item !== null && typeof item === 'object') {
    const { loc, msg } = item as { loc?: unknown; msg?: unknown };
    if (typeof msg === 'string') return Array.isArray(loc) ? `${loc.join('.')}: ${msg}` : msg;
  }
  return JSON.stringify(item);
}

function htmlText(html: string): string {
  const title = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(html)?.[1]?.trim();
  const body = html
    .replace(/<(head|script|style)[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return title && body.startsWith(title) ? body : [title, body].filter(Boolean).join(': ');
}

function parseJson(text: string): unknown {
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function clip(message: string): string {
  return message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS)}…` : message;
}

export function errorTypeFor(status: number): OpenAIErrorType {
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 503) return 'service_unavailable';
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

/**
 * A caller-fault error body in the client's API format. OpenAI surfaces get the envelope
 * (normalizeUpstreamError's). An Anthropic or Ollama surface gets the node's own bytes when a
 * native node already answered in that format (`raw`), else its format rendered with the
 * node's status and message (a translated node answered in OpenAI's).
 */
export function errorBodyIn(format: ErrorFormat, status: number, raw: Buffer | null, message: string, envelope: Buffer): Buffer {
  if (format === 'openai') return envelope;
  if (raw !== null) {
    const parsed = parseJson(raw.toString('utf8'));
    if (format === 'anthropic' ? isAnthropicErrorBody(parsed) : isOllamaErrorBody(parsed)) return raw;
  }
  const error = new GatewayError('invalid_request', message, { status });
  return Buffer.from(ERROR_RENDERERS[format].body(error));
}
