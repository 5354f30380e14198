import { expect, test } from 'vitest';
import { InFlight } from './router.ts';

test('InFlight: holds items by slot, reuses freed slots, iterates what is held', () => {
  const held = new InFlight<string>();
  const a = held.add('a');
  const b = held.add('b');
  const c = held.add('c');
  expect([...held]).toEqual(['a', 'b', 'c']);
  held.delete(b);
  expect([...held]).toEqual(['a', 'c']);
  expect(held.size).toBe(2);
  // A freed slot is taken again: the array grows only to the most held at once.
  expect(held.add('d')).toBe(b);
  expect([...held]).toEqual(['a', 'd', 'c']);
  held.delete(a);
  held.delete(c);
  // Deleting while iterating (shutdown aborts, and their close events delete) is safe.
  const seen: string[] = [];
  for (const item of held) {
    seen.push(item);
    held.delete(b);
  }
  expect(seen).toEqual(['d']);
  expect(held.size).toBe(0);
  expect([...held]).toEqual([]);
});
