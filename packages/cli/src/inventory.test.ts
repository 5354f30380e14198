/** `pnpm inventory` as a real process against real fake servers. */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { startFakeLlmServer, uniquePrefix, type FakeLlmProcess } from '@ai-lb/testkit';
import { RedisStateStore, type NodeState } from '@ai-lb/shared';
import { ENTRIES } from './testing/cli-processes.ts';

const ENTRY = ENTRIES.inventory;

/** Runs the CLI to its end (bounded), collecting its output. */
function runInventory(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
      // No REDIS_* from the outer environment: "works without Redis" must hold.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOAD_BALANCER_HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`inventory did not exit within 20 s; stderr: ${stderr}`));
    }, 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let ollama: FakeLlmProcess;
let llamacpp: FakeLlmProcess;
let garbage: FakeLlmProcess;

beforeAll(async () => {
  [ollama, llamacpp, garbage] = await Promise.all([
    startFakeLlmServer({ kind: 'ollama', models: ['llama3:latest', 'qwen2:7b'] }),
    startFakeLlmServer({ kind: 'llamacpp', models: ['a.gguf'], slots: 4 }),
    startFakeLlmServer({ kind: 'garbage' }),
  ]);
});

afterAll(async () => {
  await Promise.all([ollama, llamacpp, garbage].map((fake) => fake?.stop()));
});

describe('pnpm inventory', () => {
  const hosts = () => `${ollama.node},${llamacpp.node},${garbage.node},127.0.0.1:1`;

  test('--json: the nodes, what answered but is not a node, exit 0, nothing written', async () => {
    const { code, stdout, stderr } = await runInventory(['--json'], { SCAN_HOSTS: hosts(), SCAN_PORTS: '1' });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as { nodes: NodeState[]; rejected: unknown[]; targets: number; outcomes: object; written: boolean };
    expect(result.targets).toBe(4);
    expect(result.written).toBe(false);
    expect(result.outcomes).toEqual({ node: 2, closed: 1, gateway: 0, failed: 1 });
    expect(result.nodes.map((n) => [n.node, n.kind, n.healthy, n.models, n.maxconn, n.capacitySource])).toEqual([
      [ollama.node, 'ollama', true, ['llama3:latest', 'qwen2:7b'], 0, 'default'],
      [llamacpp.node, 'llamacpp', true, ['a.gguf'], 4, 'detected'],
    ]);
    expect(result.rejected).toEqual([{ node: garbage.node, reason: 'invalid_json', error: expect.any(String) }]);
  });

  test('--json and the table show each node’s engine load, polled once like the monitor does', async () => {
    const json = await runInventory(['--json'], { SCAN_HOSTS: hosts(), SCAN_PORTS: '1' });
    expect(json.code).toBe(0);
    const { engineLoad } = JSON.parse(json.stdout) as {
      engineLoad: { readings: Record<string, { running: number | null; loadedModels: string[] | null }>; failures: unknown[] };
    };
    expect(engineLoad.failures).toEqual([]);
    expect(engineLoad.readings[ollama.node]).toMatchObject({ loadedModels: expect.arrayContaining(['llama3:latest']) });
    expect(engineLoad.readings[llamacpp.node]).toMatchObject({ running: expect.any(Number) });
    const table = await runInventory([], { SCAN_HOSTS: hosts(), SCAN_PORTS: '1' });
    const lines = table.stdout.trimEnd().split('\n');
    const at = lines.findIndex((l) => /^NODE +ENGINE LOAD$/.test(l));
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at).find((l) => l.startsWith(ollama.node))).toMatch(/loaded: llama3:latest/);
    expect(lines.slice(at).find((l) => l.startsWith(llamacpp.node))).toMatch(/run \d+/);
    expect(lines.at(-1)).toMatch(/^2 node\(s\) on 4 target\(s\)/);
  });

  test('the table: one row per node and a summary line', async () => {
    const { code, stdout } = await runInventory([], { SCAN_HOSTS: hosts(), SCAN_PORTS: '1', MAXCONN_MAP: `${ollama.node}=3` });
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NODE +KIND +HEALTH +MODELS +CAPACITY +LATENCY$/);
    expect(lines.find((l) => l.startsWith(ollama.node))).toMatch(/ollama +healthy +llama3:latest\*, qwen2:7b +3 \(map\) +[\d.]+ ms$/);
    expect(lines.find((l) => l.startsWith(llamacpp.node))).toMatch(/llamacpp +healthy +a\.gguf +4 \(detected\)/);
    expect(lines.find((l) => l.startsWith(garbage.node))).toMatch(/rejected +invalid_json: /);
    const surfaces = lines.findIndex((l) => /^NODE +API SURFACES$/.test(l));
    expect(surfaces).toBeGreaterThan(0);
    expect(lines.slice(surfaces).find((l) => l.startsWith(ollama.node))).toMatch(/chat_completions.*\bollama\b/);
    expect(lines.slice(surfaces).find((l) => l.startsWith(llamacpp.node))).toMatch(/chat_completions.*completions/);
    expect(lines.at(-1)).toMatch(/^2 node\(s\) on 4 target\(s\) scanned in \d+ ms \(closed 1, failed 1, gateways skipped 0\)$/);
  });

  test('--write publishes through the state store (Redis here); without it nothing is written', async () => {
    const prefix = uniquePrefix('inventory');
    const store = new RedisStateStore({ url: inject('redisUrl'), keyPrefix: prefix });
    try {
      const env = { SCAN_HOSTS: `${ollama.node}`, SCAN_PORTS: '1', REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: prefix };
      expect((await runInventory(['--json'], env)).code).toBe(0);
      expect(await store.listNodes()).toEqual([]);
      const written = await runInventory(['--json', '--write'], env);
      expect(written.code).toBe(0);
      expect(JSON.parse(written.stdout).written).toBe(true);
      expect((await store.listNodes()).map((n) => [n.node, n.kind, n.healthy])).toEqual([[ollama.node, 'ollama', true]]);
    } finally {
      await store.close();
    }
  });

  test.each([
    [['--bogus'], {}, 2, /^ai-lb inventory: Unknown option '--bogus'/],
    [[], { SCAN_HOSTS: '10.0.0.0/8' }, 1, /^ai-lb: SCAN_HOSTS="10\.0\.0\.0\/8" is invalid: expected at most 65536/],
    [[], { SCAN_HOSTS: 'not a host!' }, 1, /^ai-lb: SCAN_HOSTS="not a host!" is invalid/],
    [[], { SCAN_PORTS: '0' }, 1, /^ai-lb: SCAN_PORTS="0" is invalid/],
  ])('bad input %j %j: exit %i with a short message, no stack trace', async (args, env, exitCode, message) => {
    const { code, stdout, stderr } = await runInventory(args, env);
    expect(code).toBe(exitCode);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
