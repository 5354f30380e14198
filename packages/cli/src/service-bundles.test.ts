/**
 * The Docker image runs the services as bundles (`pnpm build`), not as .ts under tsx. No
 * Docker engine runs here, so this builds the same bundles and starts them as real
 * processes: a bundling mistake (a missed dependency, a broken entry check) fails here.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { GATEWAY_MARK_HEADER } from '@ai-lb/shared';
import { spawnTsProcess, startFakeLlmServer, uniquePrefix, type FakeLlmProcess, type SpawnedProcess } from '@ai-lb/testkit';
import { asciiOnly, buildBundles, SERVICE_ENTRIES } from '../../../scripts/build-bundles.ts';

let outDir: string;
let bundles: Record<keyof typeof SERVICE_ENTRIES, string>;
let upstream: FakeLlmProcess;
const started: SpawnedProcess<{ port: number }>[] = [];

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), 'ai-lb-dist-'));
  [bundles, upstream] = await Promise.all([buildBundles(SERVICE_ENTRIES, outDir), startFakeLlmServer({ models: ['m1'] })]);
}, 60_000);

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop()));
  await upstream?.stop();
  rmSync(outDir, { recursive: true, force: true });
});

test('every bundle is pure ASCII, so V8 holds its source as one-byte text (half the heap)', () => {
  for (const file of Object.values(bundles)) expect(readFileSync(file, 'latin1')).not.toMatch(/[^\x00-\x7f]/);
});

test('asciiOnly escapes what is left without changing what the code means', async () => {
  const file = join(outDir, 'escape-check.mjs');
  writeFileSync(file, 'export const s = "request’s §5 🚀"; // a comment’s quote\nexport const r = /é+/u.test("éé");\n');
  asciiOnly(file);
  expect(readFileSync(file, 'latin1')).not.toMatch(/[^\x00-\x7f]/);
  const mod = (await import(file)) as { s: string; r: boolean };
  expect(mod).toMatchObject({ s: 'request’s §5 🚀', r: true });
});

/** A bundle started with plain node, as the image's CMD does. */
async function run(file: string, args: string[], env: Record<string, string>) {
  const proc = await spawnTsProcess<{ port: number; monitorPort?: number }>(file, args, { env, tsx: false });
  started.push(proc);
  return proc;
}

/** Chat through the gateway until the monitor's first scan has reached it (bounded). */
async function chatUntilRouted(gatewayPort: number): Promise<Response | undefined> {
  const base = `http://127.0.0.1:${gatewayPort}`;
  let answer: Response | undefined;
  for (let i = 0; i < 100 && answer?.status !== 200; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 50));
    answer = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }),
    });
  }
  return answer;
}

test('dist/start.mjs (gateway + monitor in one process, as `pnpm start`) finds a server and answers', async () => {
  const gateway = await run(bundles.start, [], {
    LOAD_BALANCER_PORT: '0',
    MONITOR_PORT: '0',
    SCAN_HOSTS: upstream.node,
    SCAN_INTERVAL: '1',
  });
  const answer = await chatUntilRouted(gateway.ready.port);
  expect(answer?.status).toBe(200);
  expect(answer?.headers.get(GATEWAY_MARK_HEADER)).toBe('1');
  expect(answer?.headers.get('x-routed-node')).toBe(upstream.node);
  expect(((await answer!.json()) as { model: string }).model).toBe('m1');
});

test('dist/inventory.mjs scans and prints JSON', async () => {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync(process.execPath, [bundles.inventory, '--json'], {
    env: { ...process.env, SCAN_HOSTS: upstream.node },
    encoding: 'utf8',
  });
  const report = JSON.parse(out) as { nodes: Array<{ node: string; models: string[] }> };
  expect(report.nodes.map((n) => [n.node, n.models])).toEqual([[upstream.node, ['m1']]]);
});

test('the compose topology: dist/monitor.mjs writes the fleet to Redis, dist/gateway.mjs routes by it', async () => {
  const env = { REDIS_URL: inject('redisUrl'), REDIS_KEY_PREFIX: uniquePrefix('bundles'), SCAN_HOSTS: upstream.node, SCAN_INTERVAL: '1' };
  await run(bundles.monitor, [], { ...env, MONITOR_PORT: '0' });
  const gateway = await run(bundles.gateway, [], { ...env, LOAD_BALANCER_PORT: '0' });
  const answer = await chatUntilRouted(gateway.ready.port);
  expect(answer?.status).toBe(200);
  expect(answer?.headers.get('x-routed-node')).toBe(upstream.node);
});
