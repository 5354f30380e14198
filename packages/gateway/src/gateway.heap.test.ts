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

/** A request whose body carries a unique marker, from the routes that parse a body and forward it as it is or translated. */
function heldRequest(base: string, path: string, body: (marker: string) => object) {
  const marker = `heap-marker-${randomBytes(12).toString('hex')}`;
  // The control: the request's id is held by the gateway for as long as the request is.
  const requestId = `heap-request-${randomBytes(12).toString('hex')}`;
  const client = new AbortController();
  const answer = fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify(body(marker)),
    signal: client.signal,
  }).catch(() => null);
  const end = () => {
    client.abort();
    return answer;
  };
  return { path, marker, requestId, end };
}

test('requests waiting on their upstream hold their bodies as bytes, not parsed: as they are, or translated', async () => {
  const base = `http://127.0.0.1:${gateway.ready.port}`;
  await eventually(async () => (await (await fetch(`${base}/v1/models`)).text()).includes('fault-hang'), 10_000);
  const padding = 'x'.repeat(20_000);
  // A message and a tool's description carry the marker: in the heap only if a parsed body (or its translation) is.
  const requests = [
    heldRequest(base, '/v1/chat/completions', (marker) => ({
      model: 'fault-hang',
      messages: [{ role: 'user', content: `${marker} ${padding}` }],
      tools: [{ type: 'function', function: { name: 'f', description: `${marker}-tool`, parameters: { type: 'object' } } }],
    })),
    // Anthropic Messages and Ollama's API, translated to chat for this chat-only node.
    heldRequest(base, '/v1/messages', (marker) => ({
      model: 'fault-hang',
      max_tokens: 64,
      system: `${marker}-system`,
      messages: [{ role: 'user', content: `${marker} ${padding}` }],
      tools: [{ name: 'f', description: `${marker}-tool`, input_schema: { type: 'object' } }],
    })),
    heldRequest(base, '/api/chat', (marker) => ({
      model: 'fault-hang',
      stream: false,
      messages: [{ role: 'user', content: `${marker} ${padding}` }],
    })),
  ];
  try {
    await eventually(async () => (await upstream.stats()).inflight === requests.length, 10_000);
    process.kill(gateway.pid, 'SIGUSR2');
    // The snapshot is written on the gateway's main thread: once it answers again, the file is whole.
    await eventually(async () => readdirSync(snapshots).length === 1 && (await fetch(`${base}/health`)).status > 0, 20_000, 100);
    const snapshot = readFileSync(join(snapshots, readdirSync(snapshots)[0]));
    expect(snapshot.length).toBeGreaterThan(1_000_000);
    for (const { path, marker, requestId } of requests) {
      expect(snapshot.includes(requestId), `${path}: the request's id`).toBe(true);
      expect(snapshot.includes(marker), `${path}: the body's text`).toBe(false);
    }
  } finally {
    await Promise.all(requests.map((r) => r.end()));
  }
}, 60_000);
