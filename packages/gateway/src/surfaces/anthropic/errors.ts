/**
 * Anthropic's error format, {"type":"error","error":{"type","message"}}, for every error a
 * /v1/messages client gets: the gateway's own (by HTTP status, as GatewayError carries it)
 * and an upstream's, whatever format the node used. The Anthropic SDKs pick their error
 * class by status and show error.message, so both must be right.
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
  error: { type: AnthropicErrorType; message: string };
}

/** The types Anthropic documents per status; other 4xx are the caller's fault, other 5xx the server's. */
const TYPE_BY_STATUS: Record<number, AnthropicErrorType> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  // A gateway with no node able to take the request is what Anthropic calls overloaded (529).
  503: 'overloaded_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

export function anthropicErrorType(status: number): AnthropicErrorType {
  return TYPE_BY_STATUS[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

export function anthropicErrorBody(status: number, message: string): AnthropicErrorBody {
  return { type: 'error', error: { type: anthropicErrorType(status), message } };
}

/** Anything with a status and a message: a GatewayError, or an upstream error already read. */
export function toAnthropicError(error: { status: number; message: string }): { status: number; body: AnthropicErrorBody } {
  return { status: error.status, body: anthropicErrorBody(error.status, error.message) };
}

/** An upstream error body that is already Anthropic's (a native node) passes through as is. */
export function isAnthropicErrorBody(value: unknown): value is AnthropicErrorBody {
  const error = (value as { type?: unknown; error?: { type?: unknown; message?: unknown } } | null)?.error;
  return (value as { type?: unknown } | null)?.type === 'error' && typeof error?.type === 'string' && typeof error.message === 'string';
}
