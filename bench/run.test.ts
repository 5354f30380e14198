/**
 * `pnpm bench` end to end, kept tiny (one round, 1 s runs, the node floor only) so it
 * runs in the suite: the whole pipeline produces numbers, and everything it starts is
 * gone when it ends — normally or on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const RUN = fileURLToPath(new URL('./run.ts', import.meta.url));
const TINY = [
  ...['--targets', 'node-floor', '--phases', 'throughput,held', '--rounds', '1', '--duration', '1'],
  ...['--ttfb-streams', '10', '--held-streams', '20'],
];

function runBench(args: string[], options: { interruptOn?: RegExp } = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', RUN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (options.interruptOn?.test(stderr)) {
      options.interruptOn = undefined;
      child.kill('SIGINT');
    }
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), 80_000);
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** The pids run.ts logged as "started … (pid N)". */
const startedPids = (stderr: string) => [...stderr.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('pnpm bench --json measures direct and the node floor and stops everything it started', async () => {
  const { code, stdout, stderr } = await runBench([...TINY, '--json']);
  expect(code, stderr).toBe(0);
  const report = JSON.parse(stdout) as {
    machine: { cores: number; node: string };
    summaries: Array<{
      name: string;
      rps: number;
      rpsVsDirect: number;
      cpuUsPerReq: number | null;
      heldOpened: number | null;
      errors: number;
    }>;
  };
  expect(report.machine.node).toBe(process.version);
  expect(report.summaries.map((s) => s.name)).toEqual(['direct', 'node-floor']);
  const [direct, floor] = report.summaries;
  expect(direct.rps).toBeGreaterThan(100);
  expect(direct.rpsVsDirect).toBe(1);
  expect(floor.rps).toBeGreaterThan(100);
  expect(floor.cpuUsPerReq).toBeGreaterThan(0);
  expect(floor.heldOpened).toBe(20);
  expect(direct.errors + floor.errors).toBe(0);
  const pids = startedPids(stderr);
  expect(pids.length).toBe(3); // two upstreams and the floor
  expect(pids.filter(alive)).toEqual([]);
}, 90_000);

test('Ctrl-C stops the bench and everything it started', async () => {
  const { code, stderr } = await runBench(TINY, { interruptOn: /warming up/ });
  expect(code).toBe(130);
  expect(stderr).toMatch(/interrupted; stopping everything it started/);
  const pids = startedPids(stderr);
  expect(pids.length).toBe(3);
  expect(pids.filter(alive)).toEqual([]);
}, 90_000);

test('the streaming phase relays timed events through the floor relay (and nginx when installed), then stops them', async () => {
  const args = ['--targets', 'node-floor', '--phases', 'stream', '--rounds', '1', '--streams', '20', '--stream-seconds', '1'];
  const { code, stdout, stderr } = await runBench([...args, '--json']);
  expect(code, stderr).toBe(0);
  const report = JSON.parse(stdout) as {
    stream: { summaries: Array<{ name: string; eventsPerSec: number; cpuUsPerEvent: number | null; delayP99Ms: number; errors: number }> };
  };
  const byName = new Map(report.stream.summaries.map((s) => [s.name, s]));
  expect([...byName.keys()].slice(0, 2)).toEqual(['direct', 'stream-floor']);
  const floor = byName.get('stream-floor')!;
  expect(floor.eventsPerSec).toBeGreaterThan(20 * 20 * 0.5); // 20 streams × 20 events/s, on a busy machine
  expect(floor.cpuUsPerEvent).toBeGreaterThan(0);
  expect(floor.delayP99Ms).toBeGreaterThan(0);
  expect(report.stream.summaries.reduce((sum, s) => sum + s.errors, 0)).toBe(0);
  const pids = startedPids(stderr);
  expect(pids.length).toBeGreaterThanOrEqual(5); // two upstreams, the stream upstream, the node floor, the floor relay (+ nginx)
  expect(pids.filter(alive)).toEqual([]);
}, 90_000);

test('--stream-surface messages: Anthropic streams from a vLLM-like upstream reach the client through both gateways, relayed as they are', async () => {
  const args = [
    '--targets',
    'gateway-memory,gateway-redis',
    '--phases',
    'stream',
    '--rounds',
    '1',
    '--streams',
    '20',
    '--stream-seconds',
    '1',
  ];
  const { code, stdout, stderr } = await runBench([...args, '--stream-surface', 'messages', '--json']);
  expect(code, stderr).toBe(0);
  const report = JSON.parse(stdout) as { stream: { summaries: Array<{ name: string; eventsPerSec: number; errors: number }> } };
  const byName = new Map(report.stream.summaries.map((s) => [s.name, s]));
  // The upstream answers only /v1/messages: a gateway that translated to chat completions would get 404s.
  for (const name of ['direct', 'stream-floor', 'gateway-memory', 'gateway-redis']) {
    expect(byName.get(name)?.eventsPerSec, name).toBeGreaterThan(20 * 20 * 0.5);
    expect(byName.get(name)?.errors, name).toBe(0);
  }
  expect(startedPids(stderr).filter(alive)).toEqual([]);
}, 90_000);

test('a bad flag is a one-line usage error, not a stack trace', async () => {
  const { code, stderr } = await runBench(['--rounds', 'many']);
  expect(code).toBe(2);
  expect(stderr).toMatch(/^--rounds many: expected an integer/);
  expect(stderr).not.toMatch(/\n\s+at /);
});
