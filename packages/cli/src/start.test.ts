/** `pnpm start` as a real process: gateway + monitor in one process on in-memory state. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnTsProcess, startFakeLlmServer, type FakeLlmProcess } from '@ai-lb/testkit';
import { waitFor } from '@ai-lb/monitor/testing/monitor-test-env.ts';
import { ENTRIES, logLines, takePort } from './testing/cli-processes.ts';

let fake: FakeLlmProcess;

beforeAll(async () => {
  fake = await startFakeLlmServer({ models: ['m1'] });
});
afterAll(async () => {
  await fake?.stop();
});

/** Loopback, free ports, memory state whatever the outer environment says. */
const env = (extra: Record<string, string> = {}) => ({
  LOAD_BALANCER_PORT: '0',
  LOAD_BALANCER_HOST: '127.0.0.1',
  MONITOR_PORT: '0',
  REDIS_URL: '',
  REDIS_HOST: '',
  SCAN_HOSTS: fake.node,
  SCAN_INTERVAL: '1',
  ...extra,
});

type Ready = { port: number; pid: number; store: string; monitorPort: number; targets: number };

describe('pnpm start', () => {
  test('the monitor finds the fake server, the gateway routes to it; SIGTERM exits 0', async () => {
    const proc = await spawnTsProcess<Ready>(ENTRIES.start, [], { env: env() });
    try {
      expect(proc.ready).toEqual({ port: expect.any(Number), pid: proc.pid, store: 'memory', monitorPort: expect.any(Number), targets: 1 });
      expect(Object.keys(proc.ready)[0]).toBe('port');
      const base = `http://127.0.0.1:${proc.ready.port}`;
      const listed = await waitFor(
        async () => ((await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string }[] }).data.some((m) => m.id === 'm1'),
        8000,
        100,
      );
      expect(listed).toBe(true);
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-routed-node')).toBe(fake.node);
      expect(res.headers.get('x-selected-model')).toBe('m1');
      await res.arrayBuffer();
      expect((await fetch(`http://127.0.0.1:${proc.ready.monitorPort}/health`)).status).toBe(200);
      // A failing upstream: the gateway's own line reaches the log with its fields.
      await fake.configure({ failMode: '500' });
      try {
        const failed = await fetch(`${base}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'm1', messages: [{ role: 'user', content: 'hi' }] }),
        });
        expect(failed.status).toBe(502);
        await failed.arrayBuffer();
      } finally {
        await fake.configure({ failMode: null });
      }

      const exited = new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code)));
      proc.child.kill('SIGTERM');
      expect(await exited).toBe(0);
      // One logger for the process: JSON lines, each naming the component that wrote it.
      const lines = logLines(proc.stderr());
      const said = (service: string, msg: string) => lines.some((l) => l.service === service && l.msg === msg);
      expect(said('gateway', 'gateway listening')).toBe(true);
      expect(said('monitor', 'fleet changed')).toBe(true);
      expect(said('ai-lb', 'shutting down')).toBe(true);
      expect(said('gateway', 'draining')).toBe(true);
      expect(lines.find((l) => l.service === 'gateway' && l.level === 'warn' && l.node === fake.node)).toBeDefined();
    } finally {
      await proc.stop();
    }
  });

  test('LOG_LEVEL=warn: nothing below warn is logged', async () => {
    const proc = await spawnTsProcess<Ready>(ENTRIES.start, [], { env: env({ LOG_LEVEL: 'warn' }) });
    const exited = new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code)));
    proc.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(logLines(proc.stderr())).toEqual([]);
  });

  test.each(['LOAD_BALANCER_PORT', 'MONITOR_PORT'])('%s taken: its last line names it, exit 1', async (variable) => {
    const { port, release } = await takePort();
    try {
      await expect(spawnTsProcess(ENTRIES.start, [], { env: env({ [variable]: String(port) }) })).rejects.toThrow(
        new RegExp(`exited with 1 before it was ready: (.*\\n)*ai-lb: ${variable}=${port} is already in use\\n$`),
      );
    } finally {
      await release();
    }
  });
});
