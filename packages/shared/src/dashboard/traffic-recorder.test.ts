import { describe, expect, it } from 'vitest';
import { LATENCY_BOUNDS_MS, bucketIndex, createHistogram, observe, quantile } from './latency-histogram.ts';
import { TrafficRecorder, type RequestRecord } from './traffic-recorder.ts';

const T0 = 1_700_000_000_000; // a multiple of 10 s

function recorderAt(startMs = T0) {
  const time = { now: startMs };
  const recorder = new TrafficRecorder({ clock: () => time.now });
  recorder.setKnownLabels(['m1', 'm2'], ['n1:1', 'n2:2']);
  return { recorder, time };
}

const ok = (over: Partial<RequestRecord> = {}): RequestRecord => ({ model: 'm1', node: 'n1:1', status: 200, durationMs: 100, ...over });

describe('latency histogram', () => {
  it('puts a value in the first bucket whose bound is >= it', () => {
    expect(bucketIndex(0)).toBe(0);
    expect(bucketIndex(5)).toBe(0);
    expect(bucketIndex(5.1)).toBe(1);
    expect(bucketIndex(1000)).toBe(LATENCY_BOUNDS_MS.indexOf(1000));
    expect(bucketIndex(1e9)).toBe(LATENCY_BOUNDS_MS.length);
  });

  it('quantiles interpolate inside the bucket and stay within its bounds', () => {
    const h = createHistogram();
    for (let i = 0; i < 100; i++) observe(h, 80); // all in (75, 100]
    const p50 = quantile(h, 0.5)!;
    expect(p50).toBeGreaterThan(75);
    expect(p50).toBeLessThanOrEqual(100);
    expect(quantile(h, 0.99)).toBeLessThanOrEqual(100);
  });

  it('p99 of 99 fast and 1 slow sample is in the fast bucket; p99 of 98+2 is in the slow one', () => {
    const h = createHistogram();
    for (let i = 0; i < 99; i++) observe(h, 20);
    observe(h, 5000);
    expect(quantile(h, 0.99)).toBeLessThanOrEqual(25);
    observe(h, 5000);
    expect(quantile(h, 0.99)).toBeGreaterThan(4000);
  });

  it('is null when empty, ignores negative and non-finite values, caps at the last bound', () => {
    const h = createHistogram();
    expect(quantile(h, 0.5)).toBeNull();
    observe(h, -1);
    observe(h, Number.NaN);
    expect(quantile(h, 0.5)).toBeNull();
    observe(h, 1e9);
    expect(quantile(h, 0.5)).toBe(LATENCY_BOUNDS_MS.at(-1));
  });
});

describe('TrafficRecorder', () => {
  it('counts requests by status class, 429s, failovers and queue waits in the current 10 s bucket', () => {
    const { recorder, time } = recorderAt();
    recorder.record(ok());
    recorder.record(ok({ status: 404 }));
    recorder.record(ok({ status: 429, node: null, queueWaitMs: 300 }));
    recorder.record(ok({ status: 502, failovers: 2 }));
    recorder.record(ok({ status: 200, failovers: 1, queueWaitMs: 100 }));
    time.now = T0 + 5_000;
    const series = recorder.series(time.now);
    expect(series).toHaveLength(90);
    const last = series.at(-1)!;
    expect(last).toMatchObject({
      startMs: T0,
      durationMs: 5_000,
      requests: 5,
      status2xx: 2,
      status4xx: 2,
      status5xx: 1,
      rejected429: 1,
      failovers: 3,
      queued: 2,
      queueWaitMsMean: 200,
    });
    expect(series.slice(0, -1).every((p) => p.requests === 0 && p.durationMs === 10_000)).toBe(true);
    expect(series[0].startMs).toBe(T0 - 89 * 10_000);
  });

  it('keeps 15 minutes: a bucket older than that drops out, and its ring slot is reused clean', () => {
    const { recorder, time } = recorderAt();
    recorder.record(ok());
    time.now = T0 + 60_000;
    recorder.record(ok());
    recorder.record(ok());
    expect(recorder.series(time.now).reduce((n, p) => n + p.requests, 0)).toBe(3);
    time.now = T0 + 15 * 60_000; // the slot of T0 comes round again
    recorder.record(ok({ status: 500 }));
    const series = recorder.series(time.now);
    expect(series.reduce((n, p) => n + p.requests, 0)).toBe(3);
    expect(series.at(-1)).toMatchObject({ requests: 1, status5xx: 1, status2xx: 0 });
    expect(series.find((p) => p.startMs === T0 + 60_000)?.requests).toBe(2);
  });

  it('a record stamped before the ring (a clock that stepped back) is dropped, not mixed into a newer bucket', () => {
    const { recorder, time } = recorderAt(T0 + 20 * 60_000);
    recorder.record(ok());
    time.now = T0 + 20 * 60_000 - 15 * 60_000; // same ring slot, 15 minutes older
    recorder.record(ok({ status: 500 }));
    time.now = T0 + 20 * 60_000;
    const series = recorder.series(time.now);
    expect(series.at(-1)).toMatchObject({ requests: 1, status5xx: 0 });
  });

  it('per model and node over the last minute: rates, errors, latency and TTFT quantiles, tokens/s', () => {
    const { recorder, time } = recorderAt();
    for (let i = 0; i < 30; i++) recorder.record(ok({ durationMs: 200, ttftMs: 40, outputTokens: 10 }));
    recorder.record(ok({ model: 'm2', node: 'n2:2', status: 503, durationMs: 3000 }));
    time.now = T0 + 50_000; // 5 full buckets + nothing yet in the 6th
    recorder.record(ok({ durationMs: 200, ttftMs: 40, outputTokens: 10 }));
    time.now = T0 + 60_000 - 1; // still the 6th bucket: the window is exactly 60 s long
    const models = recorder.summaries('model', 60_000, time.now);
    const m1 = models.get('m1')!;
    expect(m1.requests).toBe(31);
    expect(m1.errors).toBe(0);
    expect(m1.requestsPerSec).toBeCloseTo(31 / 60, 2);
    expect(m1.tokensPerSec).toBeCloseTo(310 / 60, 2);
    expect(m1.latencyMsP50).toBeGreaterThan(150);
    expect(m1.latencyMsP50).toBeLessThanOrEqual(250);
    expect(m1.ttftMsP50).toBeGreaterThan(25);
    expect(m1.ttftMsP99).toBeLessThanOrEqual(50);
    expect(models.get('m2')).toMatchObject({ requests: 1, errors: 1, ttftMsP50: null });
    const nodes = recorder.summaries('node', 60_000, time.now);
    expect(nodes.get('n1:1')?.requests).toBe(31);
    expect(nodes.get('n2:2')?.requests).toBe(1);
    // A minute later, the first 30 fell out of the window.
    time.now = T0 + 120_000;
    expect(recorder.summaries('model', 60_000, time.now).get('m1')).toBeUndefined();
  });

  it('labels only known models and nodes: everything else is `other`, missing ones `none`', () => {
    const { recorder, time } = recorderAt();
    for (let i = 0; i < 1000; i++) recorder.record(ok({ model: `random-${i}`, node: `10.0.0.${i % 250}:1` }));
    recorder.record(ok({ model: null, node: null, status: 400 }));
    const models = recorder.summaries('model', 60_000, time.now + 1);
    expect([...models.keys()].sort()).toEqual(['none', 'other']);
    expect(models.get('other')?.requests).toBe(1000);
    const nodes = recorder.summaries('node', 60_000, time.now + 1);
    expect([...nodes.keys()].sort()).toEqual(['none', 'other']);
  });

  it('maxLabels bounds the known set itself', () => {
    const time = { now: T0 };
    const recorder = new TrafficRecorder({ clock: () => time.now, maxLabels: 2 });
    recorder.setKnownLabels(['a', 'b', 'c'], []);
    for (const model of ['a', 'b', 'c']) recorder.record(ok({ model }));
    expect([...recorder.summaries('model', 60_000, T0 + 1).keys()].sort()).toEqual(['a', 'b', 'other']);
  });

  it('attempt errors count against the node and keep its last message; unknown nodes keep none', () => {
    const { recorder, time } = recorderAt();
    recorder.recordAttemptError('n1:1', 'ECONNREFUSED');
    time.now += 1000;
    recorder.recordAttemptError('n1:1', 'upstream 503');
    recorder.recordAttemptError('10.9.9.9:1', 'timeout');
    recorder.record(ok({ node: 'n2:2' }));
    expect(recorder.lastErrors().get('n1:1')).toEqual({ message: 'upstream 503', atMs: T0 + 1000 });
    expect(recorder.lastErrors().has('10.9.9.9:1')).toBe(false);
    const nodes = recorder.summaries('node', 60_000, time.now);
    expect(nodes.get('n1:1')).toMatchObject({ requests: 0, errors: 2 });
    expect(nodes.get('other')).toMatchObject({ errors: 1 });
    recorder.setKnownLabels(['m1'], ['n2:2']); // n1:1 left the fleet: its error goes with it
    expect(recorder.lastErrors().has('n1:1')).toBe(false);
  });

  it('stays bounded under a long run of requests (memory does not grow with request count)', () => {
    const { recorder, time } = recorderAt();
    for (let i = 0; i < 200_000; i++) {
      time.now = T0 + i * 50; // 10,000 s: the ring wraps ~11 times
      recorder.record(ok({ model: i % 2 ? 'm1' : 'm2', node: i % 3 ? 'n1:1' : `x${i}` }));
    }
    const series = recorder.series(time.now);
    expect(series).toHaveLength(90);
    expect(series.reduce((n, p) => n + p.requests, 0)).toBeLessThanOrEqual(90 * 200);
    expect([...recorder.summaries('node', 15 * 60_000, time.now).keys()].sort()).toEqual(['n1:1', 'other']);
  });
});
