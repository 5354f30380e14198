/**
 * The instruments themselves, against real processes: a number the bench prints must be
 * able to come out wrong here first.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnTsProcess, startFakeLlmServer, type FakeLlmProcess, type SpawnedProcess } from '@ai-lb/testkit';
import { runAutocannon } from './autocannon-load.ts';
import { measureHeldStreams } from './measure-held-streams.ts';
import { measureTtfb } from './measure-ttfb.ts';
import { readCpuMs, readRssBytes } from './process-usage.ts';
import { runWrk, wrkInstalled } from './wrk-load.ts';

const FLOOR = fileURLToPath(new URL('./node-floor.ts', import.meta.url));
const chat = (model: string, stream = false) => JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] });

let upstream: FakeLlmProcess;
let floor: SpawnedProcess<{ port: number }>;
let floorUrl: string;

beforeAll(async () => {
  upstream = await startFakeLlmServer({ models: ['bench-model', 'fault-stall-stream'] });
  floor = await spawnTsProcess(FLOOR, ['--upstreams', upstream.node]);
  floorUrl = `http://127.0.0.1:${floor.ready.port}/v1/chat/completions`;
});
afterAll(async () => {
  await floor?.stop();
  await upstream?.stop();
});

describe.each([
  ['wrk', runWrk, !wrkInstalled()],
  ['autocannon', runAutocannon, false],
] as const)('load generator %s', (_name, run, missing) => {
  test.skipIf(missing)('counts completed requests and reports latency percentiles', async () => {
    await upstream.reset();
    // A 3 ms answer: autocannon reports whole milliseconds, so a sub-ms p50 would read as 0.
    const result = await run({ url: `${upstream.url}/v1/chat/completions`, body: chat('fault-slow-3'), connections: 4, durationSec: 1 });
    const stats = await upstream.stats();
    expect(result.errors).toBe(0);
    expect(result.requests).toBeGreaterThan(50);
    // Every request the generator counted reached the server (it may have sent a few more
    // that were cut off when the run ended).
    expect(stats.byModel['fault-slow-3']).toBeGreaterThanOrEqual(result.requests);
    expect(result.requestsPerSec).toBeCloseTo(result.requests / result.durationSec, 5);
    expect(result.p50Ms).toBeGreaterThanOrEqual(3);
    expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
  });

  test.skipIf(missing)('counts non-2xx answers as errors', async () => {
    const result = await run({ url: `${upstream.url}/v1/chat/completions`, body: chat('fault-503'), connections: 2, durationSec: 1 });
    expect(result.requests).toBeGreaterThan(0);
    expect(result.errors).toBeGreaterThanOrEqual(result.requests);
  });
});

test('stream TTFB is timed to the first body byte, not to the response head', async () => {
  // fault-slow-first-token-150: the head is sent at once, the first chunk 150 ms later.
  const slow = await measureTtfb({ url: floorUrl, body: chat('fault-slow-first-token-150', true), streams: 3, concurrency: 3 });
  expect(slow.errors).toBe(0);
  expect(slow.p50Ms).toBeGreaterThanOrEqual(145);
  const fast = await measureTtfb({ url: floorUrl, body: chat('bench-model', true), streams: 20, concurrency: 2 });
  expect(fast.errors).toBe(0);
  expect(fast.p50Ms).toBeLessThan(100);
});

test('TTFB counts a failing target as errors, not as samples', async () => {
  const result = await measureTtfb({ url: floorUrl, body: chat('fault-503', true), streams: 4, concurrency: 2 });
  expect(result.errors).toBe(4);
  expect(result.p50Ms).toBeNaN();
});

test('held streams: all open at once, RSS read, upstream released after the clients leave', async () => {
  const result = await measureHeldStreams({
    url: floorUrl,
    body: chat('fault-stall-stream', true),
    count: 150,
    pid: floor.pid,
    upstreamInflight: async () => (await upstream.stats()).inflight,
  });
  expect(result.opened).toBe(150);
  expect(result.rssMb).toBeGreaterThan(10);
  expect(result.releasedMs).toBeLessThan(10_000);
  expect((await upstream.stats()).inflight).toBe(0);
});

test('CPU time and RSS are read from /proc for another process', async () => {
  const before = readCpuMs(upstream.pid);
  await runAutocannon({ url: `${upstream.url}/v1/chat/completions`, body: chat('bench-model'), connections: 4, durationSec: 1 });
  expect(readCpuMs(upstream.pid) - before).toBeGreaterThan(50);
  expect(readRssBytes(upstream.pid)).toBeGreaterThan(10 * 2 ** 20);
  expect(() => readRssBytes(2 ** 22 + 12345)).toThrow();
});
