import { describe, expect, test } from 'vitest';
import { AttemptError } from '../forwarding/attempt-error.ts';
import { classifyError, classifyStatus, parseRetryAfterMs } from './classify-failure.ts';

const withCode = (code: string) => Object.assign(new Error('some message that must not matter'), { code });

describe('classifyError', () => {
  test('connection errors are retryable node failures', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']) {
      expect(classifyError(withCode(code))).toEqual({ retry: true, timedOut: false, outcome: 'failure', reason: 'network' });
    }
  });

  test('timeouts are retryable and mark the node as timed out', () => {
    for (const code of ['UND_ERR_HEADERS_TIMEOUT', 'AI_LB_HEADERS_TIMEOUT', 'AI_LB_FIRST_TOKEN_TIMEOUT']) {
      expect(classifyError(withCode(code))).toMatchObject({ retry: true, timedOut: true, reason: 'timeout' });
    }
  });

  test('stream checks are retryable with their own reason', () => {
    expect(classifyError(new AttemptError('AI_LB_ERROR_EVENT', 'x'))).toMatchObject({ retry: true, reason: 'error_event' });
    expect(classifyError(new AttemptError('AI_LB_INCOMPLETE_STREAM', 'x'))).toMatchObject({ retry: true, reason: 'incomplete_stream' });
  });

  test('a client abort is neutral and not retried', () => {
    expect(classifyError(new AttemptError('AI_LB_CLIENT_ABORT', 'x'))).toEqual({
      retry: false,
      timedOut: false,
      outcome: 'neutral',
      reason: 'client_abort',
    });
  });

  test('decides by code, never by message', () => {
    expect(classifyError(new Error('ECONNREFUSED timeout socket'))).toMatchObject({ retry: false, reason: 'unknown', outcome: 'neutral' });
  });
});

describe('classifyStatus', () => {
  test('5xx and 429 fail over; 429 does not count against the circuit', () => {
    expect(classifyStatus(500)).toMatchObject({ retry: true, outcome: 'failure', reason: 'status_5xx' });
    expect(classifyStatus(503)).toMatchObject({ retry: true, outcome: 'failure' });
    expect(classifyStatus(429)).toMatchObject({ retry: true, outcome: 'neutral', reason: 'status_429' });
  });

  test('caller faults pass through, neutral, not retried', () => {
    for (const status of [400, 401, 403, 404, 413, 422]) {
      expect(classifyStatus(status)).toEqual({ retry: false, timedOut: false, outcome: 'neutral', reason: 'caller_fault' });
    }
    expect(classifyStatus(409)).toMatchObject({ retry: false, reason: 'other_4xx' });
    // A redirect is never followed (it could point anywhere): the next node is tried instead.
    expect(classifyStatus(302)).toMatchObject({ retry: true, reason: 'bad_response' });
  });
});

describe('parseRetryAfterMs', () => {
  test('seconds, dates and garbage', () => {
    expect(parseRetryAfterMs('2', 0)).toBe(2000);
    expect(parseRetryAfterMs('0.5', 0)).toBe(500);
    expect(parseRetryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(parseRetryAfterMs('soon', 0)).toBeNull();
    expect(parseRetryAfterMs(undefined, 0)).toBeNull();
  });
});
