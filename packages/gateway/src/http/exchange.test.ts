import fc from 'fast-check';
import { expect, test } from 'vitest';
import { nestsDeeper, pickRequestId } from './exchange.ts';

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

/** The depth of JSON text counted on its bytes: each `{` or `[` outside a string opens a level. */
function depthOfText(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') deepest = Math.max(deepest, ++depth);
    else if (c === '}' || c === ']') depth--;
  }
  return deepest;
}

test('nestsDeeper: the parsed value nests deeper than the limit exactly when its text does', () => {
  fc.assert(
    fc.property(fc.object({ maxDepth: 8, values: [fc.jsonValue({ maxDepth: 6 })] }), fc.integer({ min: 1, max: 12 }), (value, limit) => {
      const text = JSON.stringify(value);
      expect(nestsDeeper(JSON.parse(text), limit)).toBe(depthOfText(text) > limit);
    }),
    { numRuns: 2_000 },
  );
});

test('nestsDeeper: brackets inside strings are text, and a depth of 200,000 is answered without exhausting the stack', () => {
  expect(nestsDeeper(JSON.parse('{"a":"[[[[{{{{"}'), 1)).toBe(false);
  expect(nestsDeeper(JSON.parse('{"a":[[]]}'), 2)).toBe(true);
  expect(nestsDeeper(JSON.parse('{"a":[[]]}'), 3)).toBe(false);
  const deep = JSON.parse(`{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`);
  expect(nestsDeeper(deep, 1000)).toBe(true);
  expect(nestsDeeper(JSON.parse(`{"a":${'['.repeat(999)}${']'.repeat(999)}}`), 1000)).toBe(false);
  expect(nestsDeeper(JSON.parse(`{"a":${'['.repeat(1000)}${']'.repeat(1000)}}`), 1000)).toBe(true);
});
