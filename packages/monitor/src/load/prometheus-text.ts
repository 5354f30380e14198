/**
 * The Prometheus text exposition format, as far as a load poller needs it: sample lines
 * `name{label="value",…} value [timestamp]`, comments and blank lines skipped. Label
 * values may hold spaces, commas, braces and the escapes \\ \" \n; values may be NaN,
 * +Inf or -Inf. A line that is none of these is skipped, not fatal: a page is judged by
 * whether the metrics a poller needs are in it.
 *
 * Written here rather than taken from npm: the one parser package with real use
 * (parse-prometheus-text-format) is CommonJS without types or releases in years, and
 * reading gauges is this file.
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

export function parsePrometheusText(text: string): PromSample[] {
  const samples: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const sample = parseSampleLine(line);
    if (sample !== null) samples.push(sample);
  }
  return samples;
}

function parseSampleLine(line: string): PromSample | null {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) return null;
  let rest = line.slice(name.length);
  let labels: Record<string, string> = {};
  if (rest.startsWith('{')) {
    const parsed = parseLabels(rest);
    if (parsed === null) return null;
    labels = parsed.labels;
    rest = rest.slice(parsed.end);
  }
  // OpenMetrics exemplars (`value # {trace_id="…"} 1`) follow the value: not ours to read.
  const exemplar = rest.indexOf(' # ');
  const fields = (exemplar >= 0 ? rest.slice(0, exemplar) : rest).trim().split(/\s+/);
  if (fields[0] === '' || fields.length > 2) return null;
  const value = parseValue(fields[0]);
  return value === null ? null : { name, labels, value };
}

/** `{a="1",b="x \"y\""}` -> labels and the index just past `}`; null when malformed. */
function parseLabels(text: string): { labels: Record<string, string>; end: number } | null {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    while (text[i] === ' ' || text[i] === ',') i++;
    if (text[i] === '}') return { labels, end: i + 1 };
    const labelName = LABEL_NAME.exec(text.slice(i))?.[0];
    if (labelName === undefined) return null;
    i += labelName.length;
    while (text[i] === ' ') i++;
    if (text[i] !== '=' || text[i + 1] !== '"') return null;
    i += 2;
    let value = '';
    for (; i < text.length && text[i] !== '"'; i++) {
      if (text[i] !== '\\') value += text[i];
      else value += unescapeLabelChar(text[++i]);
    }
    if (i >= text.length) return null;
    labels[labelName] = value;
    i++;
  }
}

function unescapeLabelChar(char: string | undefined): string {
  return char === 'n' ? '\n' : (char ?? '');
}

/** Go's strconv.ParseFloat spellings that Prometheus writes; anything else is no number. */
function parseValue(field: string): number | null {
  if (field === 'NaN') return Number.NaN;
  if (field === '+Inf' || field === 'Inf') return Number.POSITIVE_INFINITY;
  if (field === '-Inf') return Number.NEGATIVE_INFINITY;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(field)) return null;
  return Number(field);
}

/**
 * The sum of a gauge over all its label sets (engines of a data-parallel vLLM, models of a
 * multi-model server), or null when the page has no sample of it. NaN and infinities are
 * kept: the caller's plausibility check rejects them.
 */
export function sumOf(samples: readonly PromSample[], name: string): number | null {
  let sum: number | null = null;
  for (const s of samples) if (s.name === name) sum = (sum ?? 0) + s.value;
  return sum;
}

/** The mean of a gauge over its label sets (a fill ratio per engine -> the node's), or null. */
export function meanOf(samples: readonly PromSample[], name: string): number | null {
  let sum = 0;
  let count = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    sum += s.value;
    count++;
  }
  return count === 0 ? null : sum / count;
}
