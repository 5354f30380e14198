/**
 * What one acquireSlot + releaseSlot pair costs on the Redis store, without HTTP around it:
 * `npx tsx bench/redis-script-cost.ts [pairs] [concurrency]`. Starts its own redis-server,
 * runs the pairs as the gateway does (LEAST_LOADED over two uncapped nodes), then prints
 * redis-server's own µs per script call (INFO commandstats) and this process's CPU µs per
 * pair. Used to measure every change to redis-scripts.ts / redis-connection.ts.
 */
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { RedisStateStore } from '@ai-lb/shared';
import { startRedis } from '@ai-lb/testkit';
import { readCpuMs } from './process-usage.ts';

const pairs = Number(process.argv[2] ?? 20_000);
const concurrency = Number(process.argv[3] ?? 50);

const candidates = [
  { node: '127.0.0.1:9001', maxconn: 0 },
  { node: '127.0.0.1:9002', maxconn: 0 },
];
const breaker = { threshold: 3, ttlMs: 30_000 };

async function onePair(store: RedisStateStore): Promise<void> {
  const leaseId = randomUUID();
  const result = await store.acquireSlot({ candidates, order: 'least_loaded', leaseId, leaseMs: 10_000, probeLeaseMs: 60_000 });
  if (result.node === null) throw new Error(`no slot: ${result.reason}`);
  await store.releaseSlot({ node: result.node, leaseId, outcome: 'success', probe: false, breaker });
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const store = new RedisStateStore({ url: redis.url, keyPrefix: 'cost:' });
  const admin = (...args: string[]) => execFileSync('redis-cli', ['-u', redis.url, ...args], { encoding: 'utf8' });
  try {
    for (let i = 0; i < 500; i++) await onePair(store); // warm-up (JIT, script load)
    admin('CONFIG', 'RESETSTAT');
    const cpuBefore = process.cpuUsage();
    const redisCpuBefore = readCpuMs(redis.pid);
    const startedAt = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < pairs) {
        next++;
        await onePair(store);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsedMs = performance.now() - startedAt;
    const cpu = process.cpuUsage(cpuBefore);
    const redisCpuUs = (readCpuMs(redis.pid) - redisCpuBefore) * 1000;
    admin('CONFIG', 'SET', 'slowlog-log-slower-than', '0');
    admin('CONFIG', 'SET', 'slowlog-max-len', '1000');
    admin('SLOWLOG', 'RESET');
    for (let i = 0; i < 200; i++) await onePair(store);
    const slow = admin('SLOWLOG', 'GET', '1000');
    admin('CONFIG', 'SET', 'slowlog-log-slower-than', '10000');
    process.stdout.write(`µs per script (sequential, SLOWLOG): ${perScript(slow)}\n`);
    const stats = admin('INFO', 'commandstats')
      .split('\n')
      .filter((line) => line.startsWith('cmdstat_'));
    process.stdout.write(
      `${pairs} pairs, c=${concurrency}: ${Math.round((pairs / elapsedMs) * 1000)} pairs/s, ` +
        `client CPU ${((cpu.user + cpu.system) / pairs).toFixed(1)} µs/pair, redis-server CPU ${(redisCpuUs / pairs).toFixed(1)} µs/pair\n${stats.join('\n')}\n`,
    );
  } finally {
    await store.close();
    await redis.stop();
  }
}

/** SLOWLOG GET as redis-cli prints it: id, time, µs, then the arguments; the 4th line is EVALSHA's sha. */
function perScript(slowlog: string): string {
  const lines = slowlog.split('\n');
  const bySha = new Map<string, number[]>();
  for (let i = 0; i + 4 < lines.length; i++) {
    if (lines[i + 3] !== 'evalsha') continue;
    const sha = lines[i + 4].slice(0, 8);
    const list = bySha.get(sha) ?? [];
    list.push(Number(lines[i + 2]));
    bySha.set(sha, list);
  }
  return [...bySha].map(([sha, us]) => `${sha}: median ${us.sort((a, b) => a - b)[us.length >> 1]} µs (${us.length})`).join(', ');
}

await main();
