/**
 * Anthropic's error format, {"type":"error","error":{"type","message"}}. The gateway's own
 * errors are rendered by http/error-formats.ts (one renderer per format); what is left here
 * is what the translation needs: the error types a translated stream may end with, and how
 * to tell that an upstream's error body already is Anthropic's (a native node), so that it
 * passes through as is.
 */
export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'timeout_error'
  | 'overloaded_error';

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string };
}

export function isAnthropicErrorBody(value: unknown): value is AnthropicErrorBody {
  const error = (value as { type?: unknown; error?: { type?: unknown; message?: unknown } } | null)?.error;
  return (value as { type?: unknown } | null)?.type === 'error' && typeof error?.type === 'string' && typeof error.message === 'string';
}
