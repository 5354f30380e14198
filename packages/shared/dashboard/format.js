// Formatting for the dashboard: numbers, durations and times as a person reads them.
// Unknown values (null) read as an en dash with a spoken "unknown", never as 0.

export const UNKNOWN = '\u2013';

/** A short number: 0, 3, 12.5, 1.2k. */
export function num(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return UNKNOWN;
  if (Math.abs(value) >= 10_000) return `${(value / 1000).toFixed(0)}k`;
  if (Math.abs(value) >= 1000) return `${(value / 1000).toFixed(1)}k`;
  if (Number.isInteger(value)) return String(value);
  return value.toFixed(Math.abs(value) >= 100 ? 0 : digits);
}

/** Milliseconds as "85 ms" or "1.4 s". */
export function ms(value) {
  if (value === null || value === undefined) return UNKNOWN;
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10_000 ? 0 : 1)} s`;
  return `${Math.round(value)} ms`;
}

/** "p50 / p99" of two millisecond values. */
export function pair(p50, p99) {
  if (p50 === null && p99 === null) return UNKNOWN;
  return `${ms(p50)} / ${ms(p99)}`;
}

/** How long ago an epoch-ms time was, relative to `nowMs`: "4 s ago", "3 min ago". */
export function ago(atMs, nowMs) {
  if (!atMs) return UNKNOWN;
  const s = Math.max(0, Math.round((nowMs - atMs) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/** Wall-clock time of day, as the browser's locale writes it. */
export function clock(atMs) {
  return new Date(atMs).toLocaleTimeString();
}

export function iso(atMs) {
  return new Date(atMs).toISOString();
}
