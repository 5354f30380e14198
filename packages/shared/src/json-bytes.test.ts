import { describe, expect, it } from 'vitest';
import { JSON_NUMBER_MAX_BYTES, jsonStringMaxBytes, putAscii, putBytes, putJsonNumber, putJsonString } from './json-bytes.ts';

/** What `put` writes from offset 3 of a buffer of exactly 3 + `room` bytes, as a string; and how many bytes. */
function written(room: number, put: (buf: Buffer, at: number) => number): { text: string; bytes: number } {
  const buf = Buffer.alloc(3 + room, 0xff);
  const end = put(buf, 3);
  return { text: buf.toString('utf8', 3, end), bytes: end - 3 };
}

describe('json-bytes', () => {
  it('putJsonString writes what JSON.stringify writes, within jsonStringMaxBytes', () => {
    const strings = [
      '',
      'plain ~',
      'q"',
      'b\\',
      '\t\n\u0000\u001f',
      '\u007f',
      'é€',
      '😀',
      '\ud800 lone',
      'x\udfff',
      '\u2028',
      'x\u001f',
      '\u0001'.repeat(50),
    ];
    for (const value of [...strings, null]) {
      const { text, bytes } = written(jsonStringMaxBytes(value), (buf, at) => putJsonString(buf, at, value));
      expect(text).toBe(JSON.stringify(value));
      expect(bytes).toBeLessThanOrEqual(jsonStringMaxBytes(value));
    }
  });

  it('putJsonNumber writes what JSON.stringify writes, digit by digit or not, within JSON_NUMBER_MAX_BYTES', () => {
    const numbers = [
      0,
      -0,
      1,
      9,
      10,
      99,
      100,
      101,
      4_294_967_296,
      1_764_000_000_123,
      2 ** 50 - 1,
      2 ** 50,
      2 ** 53 + 2,
      2 ** 55 + 8,
      987_654_321_987_654_300,
      1e21,
      0.1,
      12.34,
      -1,
    ];
    numbers.push(
      -1.2345678901234567e-100,
      Number.MAX_VALUE,
      Number.MIN_VALUE,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    );
    // Whole numbers of every length, each ending in 9 and in 0 (the digit loop's edges); above 2^53
    // JSON writes the shortest digits that read back, not the exact ones.
    for (let power = 10; power < 2 ** 51; power *= 10) numbers.push(power - 1, power, power + 1);
    for (const value of [...numbers, null]) {
      const { text, bytes } = written(JSON_NUMBER_MAX_BYTES, (buf, at) => putJsonNumber(buf, at, value));
      expect(text).toBe(JSON.stringify(value));
      expect(bytes).toBeLessThanOrEqual(JSON_NUMBER_MAX_BYTES);
    }
  });

  it('putAscii and putBytes copy and return the end', () => {
    expect(written(5, (buf, at) => putAscii(buf, at, '{"a":'))).toEqual({ text: '{"a":', bytes: 5 });
    expect(written(5, (buf, at) => putBytes(buf, at, Buffer.from('ä€')))).toEqual({ text: 'ä€', bytes: 5 });
  });
});
