import { describe, expect, it } from 'vitest';
import { ExpiringIds } from './expiring-ids.ts';

describe('ExpiringIds', () => {
  it('an id is live while now <= its expiry, and gone after', () => {
    const ids = new ExpiringIds();
    ids.set('a', 100);
    ids.set('b', 200);
    expect(ids.size(100)).toBe(2);
    expect(ids.has('a', 100)).toBe(true);
    expect(ids.has('a', 101)).toBe(false);
    expect(ids.size(101)).toBe(1);
    expect(ids.size(201)).toBe(0);
  });

  it('a renewal moved past the earliest expiry does not hide a later-expiring id', () => {
    const ids = new ExpiringIds();
    ids.set('a', 100);
    ids.set('b', 150);
    ids.set('a', 300); // renewed: the sweep bound (100) is now stale-low
    expect(ids.size(120)).toBe(2); // a stale bound costs a sweep, never a live id
    expect(ids.size(151)).toBe(1); // b expired although the bound was recomputed at 120
    expect(ids.has('a', 151)).toBe(true);
    expect(ids.size(301)).toBe(0);
  });

  it('an id added with an earlier expiry than all others lowers the sweep bound', () => {
    const ids = new ExpiringIds();
    ids.set('late', 1000);
    expect(ids.size(10)).toBe(1); // sweep bound now 1000
    ids.set('early', 50);
    expect(ids.size(51)).toBe(1);
    expect(ids.has('early', 51)).toBe(false);
  });

  it('rank counts the live ids before one, in insertion order; renewing keeps the place', () => {
    const ids = new ExpiringIds();
    ids.set('first', 100);
    ids.set('second', 500);
    ids.set('third', 500);
    ids.set('first', 400);
    expect(ids.rank('first', 0)).toBe(0);
    expect(ids.rank('third', 0)).toBe(2);
    expect(ids.rank('missing', 0)).toBe(-1);
    expect(ids.rank('third', 450)).toBe(1); // first expired: third moves up
    expect(ids.rank('first', 450)).toBe(-1);
  });

  it('delete removes an id at once', () => {
    const ids = new ExpiringIds();
    ids.set('a', 100);
    ids.delete('a');
    expect(ids.size(0)).toBe(0);
    expect(ids.has('a', 0)).toBe(false);
  });
});
