import { afterEach, describe, expect, test } from 'vitest';
import { createScanScheduler, cronPlan, type ScanScheduler } from './schedule.ts';

describe('cronPlan', () => {
  test.each([
    [1, '*/1 * * * * *', 1],
    [10, '*/10 * * * * *', 1],
    [30, '*/30 * * * * *', 1],
    [60, '0 */1 * * * *', 1],
    [300, '0 */5 * * * *', 1],
    [3600, '0 0 */1 * * *', 1],
    [21_600, '0 0 */6 * * *', 1],
    [86_400, '0 0 */24 * * *', 1],
  ])('%i s divides its unit: one cron step', (secs, expression, everyTicks) => {
    expect(cronPlan(secs)).toEqual({ expression, everyTicks });
  });

  test.each([7, 45, 90, 100, 7200 + 1])('%i s does not: a 1 s tick, fired every N ticks', (secs) => {
    expect(cronPlan(secs)).toEqual({ expression: '* * * * * *', everyTicks: secs });
  });

  test('rejects a non-positive or fractional interval', () => {
    expect(() => cronPlan(0)).toThrow(RangeError);
    expect(() => cronPlan(1.5)).toThrow(RangeError);
  });
});

describe('createScanScheduler (real node-cron, 1 s interval)', () => {
  let scheduler: ScanScheduler<number> | undefined;
  afterEach(async () => {
    await scheduler?.stop();
    scheduler = undefined;
  });

  test('fires every second; a tick during a running scan is skipped and counted, never overlapped', async () => {
    let running = 0;
    let maxRunning = 0;
    let scans = 0;
    let skips = 0;
    scheduler = createScanScheduler({
      intervalSecs: 1,
      scan: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        scans++;
        await new Promise((r) => setTimeout(r, 1500)); // longer than the interval
        running--;
        return scans;
      },
      onSkip: () => skips++,
      onError: (error) => {
        throw error;
      },
    });
    scheduler.start();
    const deadline = Date.now() + 6000;
    while ((scans < 2 || skips < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(scans).toBeGreaterThanOrEqual(2);
    expect(skips).toBeGreaterThanOrEqual(1);
    expect(maxRunning).toBe(1);
  });

  test('runNow joins the scan already running instead of starting a second one', async () => {
    let scans = 0;
    scheduler = createScanScheduler({
      intervalSecs: 60,
      scan: async () => {
        scans++;
        await new Promise((r) => setTimeout(r, 50));
        return scans;
      },
      onSkip: () => undefined,
      onError: () => undefined,
    });
    const [a, b] = await Promise.all([scheduler.runNow(), scheduler.runNow()]);
    expect([a, b, scans]).toEqual([1, 1, 1]);
    expect(scheduler.busy).toBe(false);
    expect(await scheduler.runNow()).toBe(2);
  });

  test('stop waits for the running scan and no tick fires afterwards', async () => {
    let scans = 0;
    scheduler = createScanScheduler({
      intervalSecs: 1,
      scan: async () => {
        scans++;
        await new Promise((r) => setTimeout(r, 200));
        return scans;
      },
      onSkip: () => undefined,
      onError: () => undefined,
    });
    scheduler.start();
    void scheduler.runNow();
    await scheduler.stop();
    expect(scheduler.busy).toBe(false);
    const after = scans;
    await new Promise((r) => setTimeout(r, 1300));
    expect(scans).toBe(after);
  });
});
