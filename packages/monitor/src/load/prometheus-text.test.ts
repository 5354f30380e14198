import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { meanOf, parsePrometheusText, sumOf } from './prometheus-text.ts';

describe('parsePrometheusText', () => {
  test('labels with escapes, spaces, commas and braces; timestamps; comments and blank lines', () => {
    const text = [
      '# HELP x A gauge.',
      '# TYPE x gauge',
      '',
      'x{a="1",b="say \\"hi\\", {ok}",c="back\\\\slash",d="new\\nline"} 2.5 1712345678000',
      '   y 3',
      'z{} -4e-1',
      'w{le="+Inf",} NaN',
    ].join('\n');
    expect(parsePrometheusText(text)).toEqual([
      { name: 'x', labels: { a: '1', b: 'say "hi", {ok}', c: 'back\\slash', d: 'new\nline' }, value: 2.5 },
      { name: 'y', labels: {}, value: 3 },
      { name: 'z', labels: {}, value: -0.4 },
      { name: 'w', labels: { le: '+Inf' }, value: Number.NaN },
    ]);
  });

  test('+Inf, -Inf and exemplars', () => {
    expect(parsePrometheusText('a +Inf\nb -Inf\nc 1 # {trace_id="abc"} 0.5\n').map((s) => s.value)).toEqual([
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      1,
    ]);
  });

  test('lines that are not samples are skipped, not fatal', () => {
    const text = 'good 1\n<html>\nbad{a="unterminated 2\nno_value\nx{a="1"} notanumber\ntoo many fields here\ngood 2\n';
    expect(parsePrometheusText(text)).toEqual([
      { name: 'good', labels: {}, value: 1 },
      { name: 'good', labels: {}, value: 2 },
    ]);
  });

  test('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        const samples = parsePrometheusText(text);
        for (const s of samples) expect(typeof s.value).toBe('number');
      }),
      { numRuns: 500 },
    );
  });

  test('a sample written with any label values reads back as written', () => {
    const labelValue = fc.string({ maxLength: 20 });
    fc.assert(
      fc.property(fc.dictionary(fc.stringMatching(/^[a-z_][a-z0-9_]{0,8}$/), labelValue, { maxKeys: 4 }), fc.double(), (labels, value) => {
        const escaped = Object.entries(labels)
          .map(([k, v]) => `${k}="${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`)
          .join(',');
        const written = Number.isNaN(value) ? 'NaN' : value === Infinity ? '+Inf' : value === -Infinity ? '-Inf' : String(value);
        const [sample] = parsePrometheusText(`m{${escaped}} ${written}\n`);
        expect(sample.labels).toEqual(labels);
        expect(Object.is(sample.value, value) || sample.value === value).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

test('sumOf and meanOf add up label sets and say null for a missing gauge', () => {
  const samples = parsePrometheusText('g{e="0"} 1\ng{e="1"} 3\nh 0.5\n');
  expect(sumOf(samples, 'g')).toBe(4);
  expect(meanOf(samples, 'g')).toBe(2);
  expect(sumOf(samples, 'missing')).toBeNull();
  expect(meanOf(samples, 'missing')).toBeNull();
});
