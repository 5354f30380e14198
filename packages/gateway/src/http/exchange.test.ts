import { expect, test } from 'vitest';
import { pickRequestId } from './exchange.ts';

test('a sane x-request-id is kept; CR/LF, spaces, control chars and > 128 chars are replaced', () => {
  expect(pickRequestId('req-123_abc.def:9')).toBe('req-123_abc.def:9');
  expect(pickRequestId(['first', 'second'])).toBe('first');
  for (const bad of ['a\r\nx-evil: 1', 'has space', 'tab\there', 'x'.repeat(129), '', 'é']) {
    const id = pickRequestId(bad);
    expect(id).not.toBe(bad);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
  }
  expect(pickRequestId(undefined)).toMatch(/^[0-9a-f-]{36}$/);
  expect(pickRequestId('x'.repeat(128))).toBe('x'.repeat(128));
});

test('fresh request ids are v4-UUID-shaped and never repeat', () => {
  const ids = Array.from({ length: 10_000 }, () => pickRequestId(undefined));
  for (const id of ids.slice(0, 50)) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(new Set(ids).size).toBe(ids.length);
});
