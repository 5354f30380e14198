/**
 * What one routed request was, assembled once when its response has ended (GatewayMetrics.
 * recordRequest): the metrics read it, it IS the access-log line (LOG_REQUESTS), the
 * dashboard's traffic recorder is fed from it, and a trace takes its attributes from it.
 * Every field is always present, in this order, so every line has one shape (one hidden
 * class, one serialisation path) and a reader can rely on the keys. Nothing here comes from
 * a body, a key or an authorization header.
 */
export interface RequestSummary {
  /** x-request-id as the client sent it (when sane) or as the gateway made it. */
  requestId: string;
  method: string;
  /** The request path, without the query string, at most 200 characters. */
  path: string;
  /** The API surface (chat, embeddings, …): the metrics' `route`. */
  surface: string;
  /** The client's address as the socket saw it. */
  client: string | null;
  /** `x-forwarded-for` as a front proxy set it (at most 200 characters), else null. */
  forwardedFor: string | null;
  /** The body's `model` as sent (a sentinel, an alias; at most 200 characters), null when absent or not a string. */
  modelRequested: string | null;
  /** The concrete model the request was routed as; null when it never got that far. */
  model: string | null;
  /** The node that answered (after failover, the last one); null when none did. */
  node: string | null;
  /** HTTP status the client got; 499 when the client left before a head was sent. */
  status: number;
  /** ok: answered; error: an error status; aborted: the client left first; stream_error: a stream ended by an error event. */
  outcome: RequestOutcome;
  /** The answer was an event stream. */
  stream: boolean;
  /** Upstream attempts, failovers included; 0 when nothing was sent upstream. */
  attempts: number;
  /** Attempts after the first (another node, or the same one when it is the only one). */
  failovers: number;
  /** Time spent waiting for a free slot (QUEUE_TIMEOUT_MS), null when the request did not wait. */
  queueWaitMs: number | null;
  /** Streams: request start to the first data event sent to the client; null otherwise. */
  ttftMs: number | null;
  /** Request start to the end of the response (streams: to their end). */
  durationMs: number;
  /** Tokens as the upstream's `usage` reported them, null when it did not. */
  promptTokens: number | null;
  /** From `usage`, or, for a stream without usage, estimated as its data events (tokensEstimated). */
  completionTokens: number | null;
  tokensEstimated: boolean;
}

export type RequestOutcome = 'ok' | 'error' | 'aborted' | 'stream_error';
