/**
 * The fake keeps only the latest headers it records: in front of a load it must not grow
 * (every kept string would outlive the young generation and make the fake dearer for a
 * sender of x-request-id than for one that sends none).
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { RECORDED_HEADERS_KEPT, record } from './fake-http.ts';
import { startFakeLlmServer, type FakeLlmProcess } from './start-fake-llm-server.ts';

test('record keeps at least the latest RECORDED_HEADERS_KEPT values, in order, and never twice as many', () => {
  const list: string[] = [];
  for (let i = 0; i < 10 * RECORDED_HEADERS_KEPT + 7; i++) {
    record(list, `v${i}`);
    expect(list.length).toBeLessThan(2 * RECORDED_HEADERS_KEPT);
    expect(list.at(-1)).toBe(`v${i}`);
    const kept = Math.min(i + 1, RECORDED_HEADERS_KEPT);
    expect(list.slice(-kept)).toEqual(Array.from({ length: kept }, (_, k) => `v${i + 1 - kept + k}`));
  }
});

let fake: FakeLlmProcess;

beforeAll(async () => {
  fake = await startFakeLlmServer({ models: ['m'] });
}, 60_000);

afterAll(async () => {
  await fake.stop();
});

test('a fake sent many requests keeps a bounded list of their x-request-ids, the latest last', async () => {
  const sent = 2 * RECORDED_HEADERS_KEPT + 10;
  for (let batch = 0; batch < sent; batch += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, sent - batch) }, async (_, k) => {
        const res = await fetch(`${fake.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-request-id': `id-${batch + k}` },
          body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
        });
        await res.arrayBuffer();
      }),
    );
  }
  const stats = await fake.stats();
  expect(stats.requests).toBe(sent);
  expect(stats.requestIds.length).toBeGreaterThanOrEqual(RECORDED_HEADERS_KEPT);
  expect(stats.requestIds.length).toBeLessThan(2 * RECORDED_HEADERS_KEPT);
  expect(stats.requestIds).toContain(`id-${sent - 1}`);
});
