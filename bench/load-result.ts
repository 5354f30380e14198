/** What one closed-loop load run measured, whichever generator produced it. */
export interface LoadResult {
  generator: 'wrk' | 'autocannon';
  /** Responses completed (any status). */
  requests: number;
  durationSec: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Non-2xx answers plus socket errors and timeouts: a run with errors measured the wrong thing. */
  errors: number;
}

export interface LoadRequest {
  /** Full URL, e.g. http://127.0.0.1:8000/v1/chat/completions */
  url: string;
  /** JSON body POSTed on every request. */
  body: string;
  connections: number;
  durationSec: number;
}
