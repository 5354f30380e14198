/**
 * Failures the gateway itself detects on an attempt (its own timers, what it reads in a
 * stream). They carry a code like undici's errors do, so classify-failure decides by code.
 */
export type AttemptErrorCode =
  /** No response head within REQUEST_TIMEOUT_SECS. */
  | 'AI_LB_HEADERS_TIMEOUT'
  /** A non-stream body, or a stream's first event, did not arrive in time. */
  | 'AI_LB_BODY_TIMEOUT'
  /** FIRST_TOKEN_TIMEOUT_SECS passed without a first data event. */
  | 'AI_LB_FIRST_TOKEN_TIMEOUT'
  /** STREAM_IDLE_TIMEOUT_SECS of silence after the first byte reached the client. */
  | 'AI_LB_STREAM_IDLE_TIMEOUT'
  /** A 200 stream whose first event is an error event. */
  | 'AI_LB_ERROR_EVENT'
  /** The upstream ended before sending one event, or mid-answer without finish_reason/[DONE]. */
  | 'AI_LB_INCOMPLETE_STREAM'
  /** A response the gateway cannot pass on (event-stream for stream:false, HTML for JSON, …). */
  | 'AI_LB_BAD_RESPONSE'
  /** An answer over the gateway's size limit: not an LLM answer, and no node's fault to count. */
  | 'AI_LB_ANSWER_TOO_LARGE'
  /** BUFFER_BUDGET_MB was in use by other bodies when this answer arrived. */
  | 'AI_LB_OVER_BUDGET'
  /** The client stopped reading for CLIENT_WRITE_TIMEOUT_SECS: its own fault, not the node's. */
  | 'AI_LB_CLIENT_STALLED'
  /** The client went away. */
  | 'AI_LB_CLIENT_ABORT'
  /** The gateway is stopping and the request ran past SHUTDOWN_GRACE_SECS. */
  | 'AI_LB_SHUTDOWN';

export class AttemptError extends Error {
  readonly code: AttemptErrorCode;

  constructor(code: AttemptErrorCode, message: string) {
    super(message);
    this.name = 'AttemptError';
    this.code = code;
  }
}
