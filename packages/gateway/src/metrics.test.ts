import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastCounter, FastGauge, FastHistogram } from './metrics.ts';

/** The same operations on prom-client's own metric and on ours must render the same text. */
describe('fast metrics render exactly as prom-client does', () => {
  const buckets = [0.005, 0.01, 0.1, 1, 10];
  const config = { help: 'help with "quotes" and \\ backslash' };

  it('counter with labels, including values that need escaping', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const a = new Counter({ ...config, name: 'c_total', labelNames: ['route', 'model'], registers: [theirs] });
    const b = new FastCounter(ours, { ...config, name: 'c_total', labelNames: ['route', 'model'] });
    for (const [labels, n] of [
      [{ route: 'chat', model: 'm"1\n' }, 1],
      [{ route: 'emb', model: 'x' }, 3],
      [{ route: 'chat', model: 'm"1\n' }, 2],
    ] as const) {
      a.inc(labels, n);
      b.inc(labels, n);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('c_total{route="chat",model="m\\"1\\n"} 3');
  });

  it('gauge held per label set', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const a = new Gauge({ ...config, name: 'g', labelNames: ['node'], registers: [theirs] });
    const b = new FastGauge(ours, { ...config, name: 'g', labelNames: ['node'] });
    const child = b.labels({ node: 'h:1' });
    a.inc({ node: 'h:1' });
    a.inc({ node: 'h:1' });
    a.dec({ node: 'h:1' });
    child.value++;
    child.value++;
    child.value--;
    a.inc({ node: 'h:2' });
    b.labels({ node: 'h:2' }).value++;
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('histogram: bucket edges, above the last bound, several label sets; non-finite values ignored', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const a = new Histogram({ ...config, name: 'h_seconds', labelNames: ['route', 'stream'], buckets, registers: [theirs] });
    const b = new FastHistogram(ours, { ...config, name: 'h_seconds', labelNames: ['route', 'stream'], buckets });
    const values = [0, 0.005, 0.0051, 0.01, 0.5, 1, 10, 10.01, 300];
    values.forEach((v, i) => {
      const labels = { route: i % 2 ? 'chat' : 'emb', stream: 'false' };
      a.observe(labels, v);
      b.observe(labels, v);
    });
    b.observe({ route: 'chat', stream: 'false' }, Number.NaN);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('h_seconds_bucket{le="0.005",route="emb",stream="false"}');
  });

  it('reset empties them, as resetMetrics() does for prom-client metrics', async () => {
    const ours = new Registry();
    const b = new FastCounter(ours, { ...config, name: 'c_total', labelNames: ['route'] });
    b.inc({ route: 'x' });
    ours.resetMetrics();
    expect(await ours.metrics()).not.toContain('route="x"');
  });
});
