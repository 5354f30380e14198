import type { AttemptOutcome } from '@ai-lb/shared';

/**
 * The one place that decides what a failed attempt means: by code or status, never by
 * message text.
 *
 * Retryable: the node could not give an answer, another node may. Connection-level errors
 * (refused, reset, unreachable, DNS), timeouts, 5xx and 429. A request is never retried
 * on a caller fault (400, 401, 403, 404, 413, 422): every node would say the same, and
 * passing the upstream's answer through keeps its message for the caller.
 *
 * Outcome for the circuit breaker: 'failure' only when the node itself misbehaved. A 429
 * says "busy", not "broken", so it is neutral like caller faults and client aborts.
 */

/** Node/undici error codes where the request never got an answer from the node. */
export const RETRYABLE_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_REQ_RETRY',
  // Our own stream checks: an upstream that sent nothing usable, or an error as its first event.
  'AI_LB_ERROR_EVENT',
  'AI_LB_INCOMPLETE_STREAM',
  'AI_LB_BAD_RESPONSE',
]);

/** Codes that mean the node was too slow; such a node is not tried again in the same request. */
export const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'AI_LB_HEADERS_TIMEOUT',
  'AI_LB_BODY_TIMEOUT',
  'AI_LB_FIRST_TOKEN_TIMEOUT',
  'AI_LB_STREAM_IDLE_TIMEOUT',
]);

/** Upstream statuses that move the request to another node. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || (status >= 500 && status <= 599);
}

/** Upstream statuses that are the caller's fault: passed through as is, never retried. */
export const CALLER_FAULT_STATUSES: ReadonlySet<number> = new Set([400, 401, 403, 404, 413, 422]);

/** Bounded label values for ai_lb_upstream_failures_total. */
export type FailureReason =
  | 'network'
  | 'timeout'
  | 'status_5xx'
  | 'status_429'
  | 'status_408'
  | 'error_event'
  | 'incomplete_stream'
  | 'bad_response'
  | 'client_abort'
  | 'client_stalled'
  | 'too_large'
  | 'over_budget'
  | 'shutdown'
  | 'caller_fault'
  | 'other_4xx'
  | 'unknown';

export interface FailureClass {
  retry: boolean;
  timedOut: boolean;
  outcome: AttemptOutcome;
  reason: FailureReason;
}

const CODE_REASONS: Record<string, FailureReason> = {
  AI_LB_ERROR_EVENT: 'error_event',
  AI_LB_INCOMPLETE_STREAM: 'incomplete_stream',
  AI_LB_BAD_RESPONSE: 'bad_response',
};

/**
 * What went wrong on the gateway's or the client's side of an attempt: neutral for the node,
 * and not retried (another node would meet the same client, the same answer size, the same
 * full budget).
 */
const NEUTRAL_CODES: Record<string, FailureReason> = {
  AI_LB_CLIENT_ABORT: 'client_abort',
  AI_LB_CLIENT_STALLED: 'client_stalled',
  AI_LB_ANSWER_TOO_LARGE: 'too_large',
  AI_LB_OVER_BUDGET: 'over_budget',
  AI_LB_SHUTDOWN: 'shutdown',
};

/** A thrown error (network, timeout, stream check). */
export function classifyError(error: unknown): FailureClass {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code in NEUTRAL_CODES)
    return { retry: false, timedOut: false, outcome: 'neutral', reason: NEUTRAL_CODES[code] };
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) {
    return { retry: true, timedOut: true, outcome: 'failure', reason: 'timeout' };
  }
  if (typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) {
    return { retry: true, timedOut: false, outcome: 'failure', reason: CODE_REASONS[code] ?? 'network' };
  }
  // Anything else was thrown by the gateway itself (a bug of ours, or a response it could
  // not write): never the node's fault, so neutral for its circuit, and not retried —
  // retrying a bug on every node would only multiply it.
  return { retry: false, timedOut: false, outcome: 'neutral', reason: 'unknown' };
}

/** An upstream answer with a status other than 2xx. */
export function classifyStatus(status: number): FailureClass {
  if (status === 429) return { retry: true, timedOut: false, outcome: 'neutral', reason: 'status_429' };
  if (status === 408) return { retry: true, timedOut: false, outcome: 'failure', reason: 'status_408' };
  if (isRetryableStatus(status)) return { retry: true, timedOut: false, outcome: 'failure', reason: 'status_5xx' };
  // An inference endpoint that redirects is misconfigured; the gateway never follows it elsewhere.
  if (status >= 300 && status <= 399) return { retry: true, timedOut: false, outcome: 'failure', reason: 'bad_response' };
  // The rarer 4xx (405, 409, 415 …) are no node failure either: pass them through too.
  const reason = CALLER_FAULT_STATUSES.has(status) ? 'caller_fault' : 'other_4xx';
  return { retry: false, timedOut: false, outcome: 'neutral', reason };
}

/**
 * Retry-After in ms from an upstream header: delta-seconds or an HTTP date; null when
 * absent or unreadable.
 */
export function parseRetryAfterMs(value: string | string[] | undefined, nowMs: number): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === '') return null;
  if (/^\s*\d+(\.\d+)?\s*$/.test(raw)) return Math.round(Number(raw) * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? null : Math.max(0, date - nowMs);
}
