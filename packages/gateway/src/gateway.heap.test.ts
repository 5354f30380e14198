/**
 * What a request waiting on its upstream keeps in the gateway's heap. A coding agent's body
 * parses to tens of KB of strings and objects; held through the upstream's answer, every
 * young-generation collection in that time copies them (docs/performance.md). The body's
 * bytes (off the heap) go upstream; the parsed value must be garbage once routing is done.
 * Checked in a heap snapshot of a real gateway process, taken while the request hangs.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { createStateStore, loadConfig, type StateStore } from '@ai-lb/shared';
import { spawnTsProcess, startFakeLlmServer, uniquePrefix, type FakeLlmProcess } from '@ai-lb/testkit';
import { eventually, nodeState } from './testing/gateway-harness.ts';
import { GATEWAY_ENTRY, replicaEnv, type GatewayProcess } from './testing/gateway-processes.ts';

let upstream: FakeLlmProcess;
let gateway: GatewayProcess;
let store: StateStore;
const snapshots = mkdtempSync(join(tmpdir(), 'ai-lb-heap-'));

beforeAll(async () => {
  upstream = await startFakeLlmServer({ models: ['fault-hang'] });
  const env = replicaEnv(inject('redisUrl'), uniquePrefix('heap'), { MAX_RETRIES: '0', REQUEST_TIMEOUT_SECS: '30' });
  store = createStateStore(loadConfig(env));
  await store.putNode(nodeState(upstream.node, ['fault-hang']), 60_000);
  gateway = await spawnTsProcess(GATEWAY_ENTRY, [], {
    env,
    nodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapshots}`],
    readyTimeoutMs: 20_000,
  });
}, 60_000);

afterAll(async () => {
  await Promise.all([gateway?.stop(), upstream?.stop()]);
  await store?.close();
  rmSync(snapshots, { recursive: true, force: true });
});

test('a request waiting on its upstream holds its body as bytes, not parsed', async () => {
  const base = `http://127.0.0.1:${gateway.ready.port}`;
  await eventually(async () => (await (await fetch(`${base}/v1/models`)).text()).includes('fault-hang'), 10_000);
  // Unique text in a message and in a tool's schema: present in the heap only if the parsed body is.
  const marker = `heap-marker-${randomBytes(12).toString('hex')}`;
  // The control: the request's id is held by the gateway for as long as the request is.
  const requestId = `heap-request-${randomBytes(12).toString('hex')}`;
  const body = JSON.stringify({
    model: 'fault-hang',
    messages: [{ role: 'user', content: `${marker} ${'x'.repeat(20_000)}` }],
    tools: [{ type: 'function', function: { name: 'f', description: `${marker}-tool`, parameters: { type: 'object' } } }],
  });
  const client = new AbortController();
  const answer = fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body,
    signal: client.signal,
  }).catch(() => null);
  try {
    await eventually(async () => (await upstream.stats()).inflight === 1, 10_000);
    process.kill(gateway.pid, 'SIGUSR2');
    // The snapshot is written on the gateway's main thread: once it answers again, the file is whole.
    await eventually(async () => readdirSync(snapshots).length === 1 && (await fetch(`${base}/health`)).status > 0, 20_000, 100);
    const snapshot = readFileSync(join(snapshots, readdirSync(snapshots)[0]));
    expect(snapshot.length).toBeGreaterThan(1_000_000);
    expect(snapshot.includes(requestId)).toBe(true);
    expect(snapshot.includes(`${marker}-tool`)).toBe(false);
    expect(snapshot.includes(marker)).toBe(false);
  } finally {
    client.abort();
    await answer;
  }
}, 60_000);
