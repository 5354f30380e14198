/**
 * `pnpm start:gateway` as a real process: its ready line, its logs, its start-up failures.
 * What replicas do together is tested in the gateway package (gateway.processes.test.ts).
 */
import { expect, inject, test } from 'vitest';
import { freePort, spawnTsProcess, uniquePrefix } from '@ai-lb/testkit';
import { waitFor } from '@ai-lb/monitor/testing/monitor-test-env.ts';
import { ENTRIES, logLines, takePort } from './testing/cli-processes.ts';

const env = (extra: Record<string, string> = {}) => ({
  LOAD_BALANCER_PORT: '0',
  LOAD_BALANCER_HOST: '127.0.0.1',
  REDIS_URL: inject('redisUrl'),
  REDIS_KEY_PREFIX: uniquePrefix('cli-gateway'),
  SHUTDOWN_GRACE_SECS: '1',
  ...extra,
});

test('ready line {port, pid, store, monitorPort}; JSON logs marked gateway; SIGTERM exits 0', async () => {
  const proc = await spawnTsProcess<Record<string, unknown>>(ENTRIES.gateway, [], { env: env() });
  try {
    expect(proc.ready).toEqual({ port: expect.any(Number), pid: proc.pid, store: 'redis', monitorPort: null });
    expect(Object.keys(proc.ready)).toEqual(['port', 'pid', 'store', 'monitorPort']);
    expect((await fetch(`http://127.0.0.1:${proc.ready.port}/v1/models`)).status).toBe(200);
    const exited = new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code)));
    proc.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const lines = logLines(proc.stderr());
    expect(new Set(lines.map((l) => l.service))).toEqual(new Set(['gateway']));
    expect(lines.find((l) => l.msg === 'gateway listening')).toMatchObject({ level: 'info', port: proc.ready.port, store: 'redis' });
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['shutting down', 'draining']));
  } finally {
    await proc.stop();
  }
});

test('Redis unreachable: it still starts, and says so in structured lines without the password', async () => {
  const port = await freePort();
  const proc = await spawnTsProcess<{ port: number }>(ENTRIES.gateway, [], {
    env: env({ REDIS_URL: `redis://:hunter2@127.0.0.1:${port}` }),
  });
  try {
    const said = (msg: string) => logLines(proc.stderr()).find((l) => l.msg === msg);
    expect(await waitFor(async () => said('redis unreachable; reconnecting in the background') !== undefined, 5000)).toBe(true);
    expect(said('redis unreachable; reconnecting in the background')).toMatchObject({
      level: 'warn',
      service: 'gateway',
      redis: `redis://***@127.0.0.1:${port}`,
      err: 'ECONNREFUSED',
    });
    expect(proc.stderr()).not.toContain('hunter2');
  } finally {
    await proc.stop();
  }
});

test('LOAD_BALANCER_PORT taken: one line naming it, exit 1', async () => {
  const { port, release } = await takePort();
  try {
    await expect(spawnTsProcess(ENTRIES.gateway, [], { env: env({ LOAD_BALANCER_PORT: String(port) }) })).rejects.toThrow(
      new RegExp(`exited with 1 before it was ready: (.*\\n)*ai-lb: LOAD_BALANCER_PORT=${port} is already in use\\n$`),
    );
  } finally {
    await release();
  }
});
