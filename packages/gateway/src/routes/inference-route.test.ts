import { expect, test } from 'vitest';
import { translatedBytes } from './inference-route.ts';

test('translatedBytes: top_k only for the servers known to take it, otherwise the bytes JSON.stringify writes', () => {
  const body = { model: 'm', messages: [{ role: 'user', content: 'say "hi" <b>' }], top_k: 5, max_tokens: 8 };
  const bytes = translatedBytes(body);
  expect(bytes.forKind('vllm').toString()).toBe(JSON.stringify(body));
  expect(bytes.forKind('llamacpp').toString()).toBe(JSON.stringify(body));
  const { top_k: _, ...withoutTopK } = body;
  expect(bytes.forKind('openai').toString()).toBe(JSON.stringify(withoutTopK));
  const plain = { model: 'm', messages: [], stream: true };
  const same = translatedBytes(plain);
  expect(same.forKind('openai')).toBe(same.forKind('sglang'));
  expect(same.forKind('openai').toString()).toBe(JSON.stringify(plain));
});
