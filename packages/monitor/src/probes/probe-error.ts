/**
 * Why a probe failed, as a bounded set: it is the `reason` label of
 * ai_lb_monitor_probe_errors_total, so it must never carry free text.
 */
export const PROBE_ERROR_REASONS = [
  'refused', // nothing listens: the usual answer of a scanned port, not counted as an error
  'timeout', // connect, headers or body slower than PROBE_TIMEOUT_MS
  'unreachable', // no route to the host
  'dns', // a name that does not resolve
  'reset', // the peer closed the connection mid-answer
  'http_status', // answered, but not 200
  'invalid_json', // answered 200 with a body that is not JSON (or not the expected text)
  'bad_shape', // valid JSON, but not the document the endpoint should return
  'too_large', // a body over the probe's size cap: cut off, never buffered
  'models_dropped', // a warning: some listed model ids were invalid or over the per-node cap
  'other',
] as const;
export type ProbeErrorReason = (typeof PROBE_ERROR_REASONS)[number];

export class ProbeError extends Error {
  readonly reason: ProbeErrorReason;
  /** The HTTP status when reason is http_status. */
  readonly status: number | undefined;

  constructor(reason: ProbeErrorReason, message: string, options: { cause?: unknown; status?: number } = {}) {
    super(message, { cause: options.cause });
    this.name = 'ProbeError';
    this.reason = reason;
    this.status = options.status;
  }
}

/**
 * Network error codes -> reason. Decided by code, never by message text: messages change between versions.
 * undici reports socket errors with Node's codes, and its own UND_ERR_* for its timeouts.
 */
const REASON_BY_CODE: Record<string, ProbeErrorReason> = {
  ECONNREFUSED: 'refused',
  ETIMEDOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EADDRNOTAVAIL: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EAI_NONAME: 'dns',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  UND_ERR_SOCKET: 'reset',
  UND_ERR_CLOSED: 'reset',
};

/** Any error thrown while probing -> a ProbeError; `timedOut` is the probe's own deadline. */
export function toProbeError(error: unknown, timedOut: boolean): ProbeError {
  if (error instanceof ProbeError) return error;
  if (timedOut) return new ProbeError('timeout', 'no complete answer within the probe timeout', { cause: error });
  const code = errorCode(error) ?? errorCode((error as { cause?: unknown })?.cause);
  const reason = (code && REASON_BY_CODE[code]) || 'other';
  return new ProbeError(reason, code ?? (error instanceof Error ? error.name : 'unknown error'), { cause: error });
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
