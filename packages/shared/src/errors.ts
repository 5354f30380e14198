/**
 * Every error the gateway or monitor reports to a client has one of these codes. The table
 * maps each code to its HTTP status and OpenAI error type; `Record<…>` makes the compiler
 * keep it complete. Only the gateway's error middleware renders the envelope.
 */
export type GatewayErrorCode =
  | 'invalid_json'
  | 'invalid_request'
  | 'invalid_api_key'
  | 'model_not_found'
  | 'node_not_eligible'
  | 'surface_not_served'
  | 'response_not_found'
  | 'response_node_unavailable'
  | 'route_not_found'
  | 'method_not_allowed'
  | 'request_timeout'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'capacity_exhausted'
  | 'memory_budget_exhausted'
  | 'shutting_down'
  | 'no_eligible_node'
  | 'no_fleet'
  | 'upstream_failed'
  | 'upstream_timeout'
  | 'upstream_error'
  | 'state_unavailable'
  | 'internal_error';

export type OpenAIErrorType = 'invalid_request_error' | 'not_found_error' | 'rate_limit_error' | 'server_error' | 'service_unavailable';

export const ERROR_TABLE: Record<GatewayErrorCode, { status: number; type: OpenAIErrorType }> = {
  invalid_json: { status: 400, type: 'invalid_request_error' },
  invalid_request: { status: 400, type: 'invalid_request_error' },
  invalid_api_key: { status: 401, type: 'invalid_request_error' },
  model_not_found: { status: 404, type: 'not_found_error' },
  node_not_eligible: { status: 404, type: 'not_found_error' },
  // The model is known, but no node serving it speaks this API (natively or translated).
  surface_not_served: { status: 404, type: 'not_found_error' },
  // Responses API: the id is unknown here, or the node that made it is gone.
  response_not_found: { status: 404, type: 'not_found_error' },
  response_node_unavailable: { status: 409, type: 'invalid_request_error' },
  route_not_found: { status: 404, type: 'not_found_error' },
  method_not_allowed: { status: 405, type: 'invalid_request_error' },
  request_timeout: { status: 408, type: 'invalid_request_error' },
  body_too_large: { status: 413, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  capacity_exhausted: { status: 429, type: 'rate_limit_error' },
  // BUFFER_BUDGET_MB is in use by other requests' bodies: this one can be retried shortly.
  memory_budget_exhausted: { status: 503, type: 'service_unavailable' },
  shutting_down: { status: 503, type: 'service_unavailable' },
  no_eligible_node: { status: 503, type: 'service_unavailable' },
  // No node lists the model, but no live monitor has scanned every target since it took
  // over (killed, restarting, Redis emptied): the model may well exist. Retry, not 404.
  no_fleet: { status: 503, type: 'service_unavailable' },
  upstream_failed: { status: 502, type: 'server_error' },
  upstream_timeout: { status: 504, type: 'server_error' },
  // An upstream error passed through; the status is the upstream's (see GatewayError.status).
  upstream_error: { status: 502, type: 'server_error' },
  state_unavailable: { status: 503, type: 'service_unavailable' },
  internal_error: { status: 500, type: 'server_error' },
};

export interface GatewayErrorOptions {
  cause?: unknown;
  /** The request field at fault, rendered as the envelope's `param`. */
  param?: string | null;
  /** Overrides the table's status (used to pass an upstream's status through). */
  status?: number;
  /** Overrides the table's type. */
  type?: OpenAIErrorType;
  /** Overrides the envelope's `code` (used to keep an upstream's own code). */
  publicCode?: string | null;
  /** Extra response headers, e.g. Retry-After. */
  headers?: Record<string, string>;
}

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  readonly status: number;
  readonly type: OpenAIErrorType;
  readonly param: string | null;
  readonly publicCode: string | null;
  readonly headers: Record<string, string>;

  constructor(code: GatewayErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = options.status ?? ERROR_TABLE[code].status;
    this.type = options.type ?? ERROR_TABLE[code].type;
    this.param = options.param ?? null;
    this.publicCode = options.publicCode === undefined ? code : options.publicCode;
    this.headers = options.headers ?? {};
  }

  /** The OpenAI error envelope, as SDKs parse it. */
  toEnvelope(): OpenAIErrorEnvelope {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.publicCode } };
  }
}

export interface OpenAIErrorEnvelope {
  error: { message: string; type: string; param: string | null; code: string | null };
}
