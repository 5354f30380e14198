/**
 * One acquireSlot against one PING on an idle store, the way the TTFB phase meets Redis (one
 * request about every millisecond): `npx tsx bench/acquire-round-trip.ts [samples]`. Starts
 * its own redis-server; prints the medians of both round trips and SLOWLOG's µs for the
 * single-op SLOT_OPS call inside Redis. The gap between the two is what an acquire costs a
 * stream's time to first byte over the memory store (docs/performance.md, "Issue 6 targets").
 */
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisStateStore } from '@ai-lb/shared';
import { startRedis } from '@ai-lb/testkit';
import { percentile } from './percentile.ts';

const samples = Number(process.argv[2] ?? 900);
const candidates = [
  { node: '127.0.0.1:9001', maxconn: 0 },
  { node: '127.0.0.1:9002', maxconn: 0 },
];
const breaker = { threshold: 3, ttlMs: 30_000 };

const redis = await startRedis();
const store = new RedisStateStore({ url: redis.url, keyPrefix: 'rtt:' });
const admin = (...args: string[]) => execFileSync('redis-cli', ['-u', redis.url, ...args], { encoding: 'utf8' });
/** One acquire; resolves with the release that gives its slot back. */
async function acquire(): Promise<() => Promise<void>> {
  const leaseId = randomUUID();
  const { node } = await store.acquireSlot({ candidates, order: 'least_loaded', leaseId, leaseMs: 10_000, probeLeaseMs: 60_000 });
  return () => store.releaseSlot({ node: node!, leaseId, outcome: 'success', probe: false, breaker });
}
try {
  for (let i = 0; i < 200; i++) await (await acquire())();
  const acquireMs: number[] = [];
  const pingMs: number[] = [];
  for (let i = 0; i < 2 * samples; i++) {
    await sleep(1); // idle in between, as sequential streams leave the processes
    const startedAt = performance.now();
    if (i % 2 === 0) {
      const release = await acquire();
      acquireMs.push(performance.now() - startedAt);
      await release();
    } else {
      await store.ping();
      pingMs.push(performance.now() - startedAt);
    }
  }
  // Redis logs the script's own commands too: room for all of them.
  admin('CONFIG', 'SET', 'slowlog-log-slower-than', '0');
  admin('CONFIG', 'SET', 'slowlog-max-len', '1000');
  admin('SLOWLOG', 'RESET');
  for (let i = 0; i < 50; i++) {
    await (await acquire())();
    await sleep(1);
  }
  // redis-cli prints each entry as id, time, µs, then the command's words.
  const lines = admin('SLOWLOG', 'GET', '1000').split('\n');
  const scriptUs = lines.flatMap((line, i) => (line.toLowerCase() === 'evalsha' && i >= 1 ? [Number(lines[i - 1])] : []));
  const ms = (values: number[]) => percentile(values, 50).toFixed(3);
  process.stdout.write(
    `acquire ${ms(acquireMs)} ms, ping ${ms(pingMs)} ms (medians of ${samples}); ` +
      `SLOT_OPS inside Redis ${percentile(scriptUs, 50)} µs (median of ${scriptUs.length})\n`,
  );
} finally {
  await store.close();
  await redis.stop();
}
