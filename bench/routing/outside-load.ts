/**
 * A client that bypasses ai-lb: it keeps `concurrency` requests in flight on one engine,
 * straight to its port, until stopped. Its requests carry `x-fake-external: 1` so the
 * engine counts them apart from the gateway's.
 */
import { setMaxListeners } from 'node:events';
import { Agent, request } from 'undici';
import { randomText, seededRandom } from './seeded-random.ts';
import type { OutsideLoad } from './workloads.ts';

export function startOutsideLoad(engineUrl: string, model: string, load: OutsideLoad): { stop(): Promise<void> } {
  const agent = new Agent({ connections: load.concurrency, keepAliveTimeout: 10_000 });
  const controller = new AbortController();
  // One signal shared by every loop's request: more listeners than the default warning threshold.
  setMaxListeners(load.concurrency + 10, controller.signal);
  const random = seededRandom(89);
  let stopped = false;
  const loops = Array.from({ length: load.concurrency }, async () => {
    while (!stopped) {
      try {
        const res = await request(`${engineUrl}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: agent,
          signal: controller.signal,
          headers: { 'content-type': 'application/json', 'x-fake-external': '1' },
          body: JSON.stringify({
            model,
            messages: [{ role: 'user', content: randomText(random, load.promptTokens) }],
            max_tokens: load.maxTokens,
          }),
        });
        await res.body.text();
      } catch {
        if (!stopped) await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  });
  return {
    async stop() {
      stopped = true;
      controller.abort();
      await Promise.allSettled(loops);
      await agent.destroy();
    },
  };
}

/** Resolves once the engine reports the outside requests in its queue, so measuring starts under load. */
export async function waitForOutsideLoad(
  stats: () => Promise<{ running: number; waiting: number }>,
  load: OutsideLoad,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { running, waiting } = await stats();
    if (running + waiting >= load.concurrency) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the outside client did not load its engine within ${timeoutMs} ms`);
}
