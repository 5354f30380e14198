import { describe, expect, it } from 'vitest';
import { waitUntil } from './wait-until.ts';

describe('waitUntil', () => {
  it('resolves once the check holds, checking again between pauses', async () => {
    let calls = 0;
    await waitUntil(() => ++calls === 3, { intervalMs: 1 });
    expect(calls).toBe(3);
  });

  it('awaits an async check and treats a throwing one as not yet', async () => {
    let calls = 0;
    await waitUntil(
      async () => {
        calls++;
        if (calls < 3) throw new Error('not listening yet');
        return true;
      },
      { intervalMs: 1 },
    );
    expect(calls).toBe(3);
  });

  it('rejects after timeoutMs, naming what it waited for and the last error', async () => {
    const started = performance.now();
    await expect(
      waitUntil(
        () => {
          throw new Error('connection refused');
        },
        { timeoutMs: 50, intervalMs: 5, what: 'fake server up' },
      ),
    ).rejects.toThrow(/^fake server up not reached within 50 ms \(last check threw: connection refused\)$/);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('runs one check at a time, never overlapping a slow one', async () => {
    let running = 0;
    let overlapped = false;
    let calls = 0;
    await waitUntil(
      async () => {
        overlapped ||= running > 0;
        running++;
        await new Promise((resolve) => setTimeout(resolve, 10));
        running--;
        return ++calls === 3;
      },
      { intervalMs: 0 },
    );
    expect(overlapped).toBe(false);
  });
});
