export interface WaitUntilOptions {
  /** Gives up after this long; generous by default, for a loaded machine. */
  timeoutMs?: number;
  /** Pause between two checks. */
  intervalMs?: number;
  /** What is awaited, for the timeout error. */
  what?: string;
}

/**
 * Waits for observable state instead of for time: calls `check` until it returns true,
 * pausing `intervalMs` between calls, and rejects after `timeoutMs` naming `what` and the
 * last error `check` threw (a check that throws — a server not answering yet — counts as
 * not yet). Never spins: one check runs at a time.
 */
export async function waitUntil(check: () => boolean | Promise<boolean>, options: WaitUntilOptions = {}): Promise<void> {
  const { timeoutMs = 5000, intervalMs = 20, what = 'condition' } = options;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await check()) return;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() >= deadline) {
      const cause =
        lastError === undefined ? '' : ` (last check threw: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`${what} not reached within ${timeoutMs} ms${cause}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
