import { expect, test } from 'vitest';
import { checkJsonAnswer } from './check-json-answer.ts';

const check = (text: string) => checkJsonAnswer(Buffer.from(text))?.code ?? null;

test('a JSON object passes; non-objects, truncated bodies and 200-with-error do not', () => {
  expect(check('{"id":"x","choices":[]}')).toBeNull();
  expect(check(' \n{"object":"list","data":[]}\n ')).toBeNull();
  expect(check('{ "error": null, "id": "x" }')).toBeNull();
  expect(check('{"id":"x","error":"late key is not looked at"}')).toBeNull();
  expect(check('')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('   ')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('this is not json')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('<html><body>oops</body></html>')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('{"id":"cut","choices":[')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('[1,2]')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('{"error": {broken}')).toBe('AI_LB_BAD_RESPONSE');
  expect(check('{"error":{"message":"model failed to load"}}')).toBe('AI_LB_ERROR_EVENT');
  expect(checkJsonAnswer(Buffer.from('{ "error" : "out of memory" }'))?.message).toContain('out of memory');
});
