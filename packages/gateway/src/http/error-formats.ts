import { GatewayError } from '@ai-lb/shared';

/**
 * Every error ai-lb answers goes out in the format of the API the client speaks: SDKs show
 * the message only when they can parse the body. One renderer per format, for whole
 * responses and for the error event that ends a stream that broke after it started.
 */
export type ErrorFormat = 'openai' | 'anthropic' | 'ollama';

export interface ErrorRenderer {
  contentType: string;
  /** The body of an error response. */
  body(error: GatewayError): string;
  /** The last event of a stream that broke after its head went out. */
  streamEvent(message: string, code: string): string;
}

const openai: ErrorRenderer = {
  contentType: 'application/json; charset=utf-8',
  body: (error) => JSON.stringify(error.toEnvelope()),
  streamEvent: (message, code) => `data: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code } })}\n\n`,
};

/** Anthropic's error types, by HTTP status (what the Anthropic SDK maps to its error classes). */
function anthropicType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 503 || status === 529) return 'overloaded_error';
  return status >= 500 ? 'api_error' : 'invalid_request_error';
}

const anthropic: ErrorRenderer = {
  contentType: 'application/json; charset=utf-8',
  body: (error) => JSON.stringify({ type: 'error', error: { type: anthropicType(error.status), message: error.message } }),
  streamEvent: (message) => `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message } })}\n\n`,
};

/** Ollama answers errors as {"error": "..."}; its streams are NDJSON, so the stream error is a line. */
const ollama: ErrorRenderer = {
  contentType: 'application/json; charset=utf-8',
  body: (error) => JSON.stringify({ error: error.message }),
  streamEvent: (message) => `${JSON.stringify({ error: message })}\n`,
};

export const ERROR_RENDERERS: Record<ErrorFormat, ErrorRenderer> = { openai, anthropic, ollama };

/** For a path no endpoint declares (404s): the format its API family would use. */
export function errorFormatForPath(path: string): ErrorFormat {
  if (path.startsWith('/api/')) return 'ollama';
  if (path.startsWith('/v1/messages')) return 'anthropic';
  return 'openai';
}

/**
 * What anything thrown means for the client: a GatewayError as it says; an error carrying a
 * 4xx status (malformed input caught by a parser) as a 400; anything else is a bug of ours,
 * a 500 whose cause goes to the log, never to the client. Returns null for the latter.
 */
export function asGatewayError(error: unknown): GatewayError | null {
  if (error instanceof GatewayError) return error;
  const status = (error as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new GatewayError('invalid_request', 'the request could not be parsed', { status, cause: error });
  }
  return null;
}
