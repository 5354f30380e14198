/**
 * JSON values written as UTF-8 straight into a buffer, for lines that are encoded without
 * building a string (LineEncoder). Each function writes from `at` and returns where it
 * ended; the caller makes the room (the *_MAX_BYTES bounds). What they write is what
 * JSON.stringify writes: the rare string that needs escaping is escaped by JSON.stringify
 * itself, so the two cannot disagree.
 */

/** Writes `text`, which the caller knows is ASCII (a key, a literal, a number's digits). */
export function putAscii(buf: Buffer, at: number, text: string): number {
  const length = text.length;
  for (let i = 0; i < length; i++) buf[at + i] = text.charCodeAt(i);
  return at + length;
}

export function putBytes(buf: Buffer, at: number, bytes: Uint8Array): number {
  const length = bytes.length;
  for (let i = 0; i < length; i++) buf[at + i] = bytes[i];
  return at + length;
}

/** At most how many bytes putJsonString writes for `value`: six per UTF-16 unit (`\u001f`), the quotes. */
export function jsonStringMaxBytes(value: string | null): number {
  return value === null ? 4 : 6 * value.length + 2;
}

/** `value` as a JSON string, or null. Printable ASCII is copied as it is; anything else goes through JSON.stringify. */
export function putJsonString(buf: Buffer, at: number, value: string | null): number {
  if (value === null) return putAscii(buf, at, 'null');
  const length = value.length;
  buf[at] = QUOTE;
  for (let i = 0; i < length; i++) {
    const code = value.charCodeAt(i);
    // A control character, a quote, a backslash or beyond ASCII (a surrogate, or UTF-8 of more than one byte).
    if (code < 0x20 || code === QUOTE || code === BACKSLASH || code > 0x7e) return at + buf.write(JSON.stringify(value), at);
    buf[at + 1 + i] = code;
  }
  buf[at + 1 + length] = QUOTE;
  return at + length + 2;
}

/** The longest number JSON writes (`-1.2345678901234567e-100`). */
export const JSON_NUMBER_MAX_BYTES = 24;

/** `value` as JSON writes a number (NaN and the infinities as null), or null. */
export function putJsonNumber(buf: Buffer, at: number, value: number | null): number {
  if (value === null || !Number.isFinite(value)) return putAscii(buf, at, 'null');
  return value >= 0 && value < DIGITS_BELOW && Math.floor(value) === value ? putDigits(buf, at, value) : putAscii(buf, at, `${value}`);
}

/**
 * A whole number below 2^50 digit by digit, with no string made. Below 2^50, value / 10 is
 * within 1/32 of its true quotient, so its floor is exact.
 */
function putDigits(buf: Buffer, at: number, value: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  let rest = value;
  for (let i = at + digits - 1; i >= at; i--) {
    const quotient = Math.floor(rest / 10);
    buf[i] = ZERO + (rest - quotient * 10);
    rest = quotient;
  }
  return at + digits;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const ZERO = 0x30;
const DIGITS_BELOW = 2 ** 50;
