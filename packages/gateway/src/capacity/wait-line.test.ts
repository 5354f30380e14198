import { describe, expect, it } from 'vitest';
import { WaitLine } from './wait-for-slot.ts';

interface Item {
  id: number;
  prev: Item | null;
  next: Item | null;
}

const item = (id: number): Item => ({ id, prev: null, next: null });
const ids = (line: WaitLine<Item>) => [...line].map((i) => i.id);

describe('WaitLine', () => {
  it('keeps arrival order as items leave from the front, the middle and the back', () => {
    const line = new WaitLine<Item>();
    const items = [1, 2, 3, 4, 5].map(item);
    for (const i of items) line.push(i);
    expect(ids(line)).toEqual([1, 2, 3, 4, 5]);
    expect(line.delete(items[2])).toBe(true);
    expect(ids(line)).toEqual([1, 2, 4, 5]);
    expect(line.delete(items[0])).toBe(true);
    expect(line.delete(items[4])).toBe(true);
    expect(ids(line)).toEqual([2, 4]);
    expect(line.size).toBe(2);
    line.push(item(6));
    expect(ids(line)).toEqual([2, 4, 6]);
    expect(line.toArray().map((i) => i.id)).toEqual([2, 4, 6]);
  });

  it('says an item left only once, and keeps no link from it', () => {
    const line = new WaitLine<Item>();
    const [a, b, c] = [1, 2, 3].map(item);
    line.push(a);
    line.push(b);
    line.push(c);
    expect(line.delete(b)).toBe(true);
    expect(line.delete(b)).toBe(false);
    expect(line.has(b)).toBe(false);
    expect(b.prev).toBeNull();
    expect(b.next).toBeNull();
    expect(line.size).toBe(2);
    expect(line.delete(a)).toBe(true);
    expect(line.delete(c)).toBe(true);
    expect(line.size).toBe(0);
    expect(ids(line)).toEqual([]);
    line.push(b);
    expect(ids(line)).toEqual([2]);
  });

  it('lets items leave while a copy is walked', () => {
    const line = new WaitLine<Item>();
    const items = [1, 2, 3, 4].map(item);
    for (const i of items) line.push(i);
    const seen: number[] = [];
    for (const i of line.toArray()) {
      if (!line.has(i)) continue;
      seen.push(i.id);
      line.delete(i);
      if (i.id === 1) line.delete(items[2]);
    }
    expect(seen).toEqual([1, 2, 4]);
    expect(line.size).toBe(0);
  });
});
