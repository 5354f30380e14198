/**
 * The two reference forwarders must do the job they are measured on — forward, rewrite
 * the model, stream, round-robin, cancel upstream on client disconnect, reject bad input in
 * the OpenAI envelope — or their numbers compare the gateway with something that cheats.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildBundles } from '../scripts/build-bundles.ts';
import { spawnTsProcess, startFakeLlmServer, type FakeLlmProcess, type SpawnedProcess } from '@ai-lb/testkit';

const ENTRIES = {
  'node-floor': fileURLToPath(new URL('./node-floor.ts', import.meta.url)),
  hpm: fileURLToPath(new URL('./hpm-forwarder.ts', import.meta.url)),
};

const post = (url: string, body: string) => fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json' } });

describe.each(['node-floor', 'hpm'] as const)('%s', (name) => {
  let upstreams: FakeLlmProcess[] = [];
  let forwarder: SpawnedProcess<{ port: number }>;
  let url: string;

  beforeAll(async () => {
    upstreams = await Promise.all([0, 1].map(() => startFakeLlmServer({ models: ['bench-model', 'fault-stall-stream'] })));
    forwarder = await spawnTsProcess(ENTRIES[name], ['--upstreams', upstreams.map((u) => u.node).join(',')]);
    url = `http://127.0.0.1:${forwarder.ready.port}/v1/chat/completions`;
  });
  afterAll(async () => {
    await forwarder?.stop();
    await Promise.all(upstreams.map((u) => u.stop()));
  });

  test('forwards a non-stream chat request round-robin and rewrites model auto', async () => {
    await Promise.all(upstreams.map((u) => u.reset()));
    for (let i = 0; i < 4; i++) {
      const res = await post(url, JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      const answer = (await res.json()) as { model: string; choices: unknown[] };
      expect(answer.model).toBe('bench-model');
      expect(answer.choices).toHaveLength(1);
    }
    const stats = await Promise.all(upstreams.map((u) => u.stats()));
    expect(stats.map((s) => s.byModel['bench-model'])).toEqual([2, 2]);
  });

  test('passes a stream through as server-sent events', async () => {
    const res = await post(url, JSON.stringify({ model: 'bench-model', stream: true, messages: [] }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const text = await res.text();
    expect(text).toContain('"content":"Hello"');
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  test('answers malformed JSON with a 400 in the OpenAI envelope', async () => {
    for (const body of ['{nope', '[1,2]', '"text"']) {
      const res = await post(url, body);
      expect(res.status).toBe(400);
      const error = (await res.json()) as { error: { type: string; message: string } };
      expect(error.error.type).toBe('invalid_request_error');
      expect(error.error.message.length).toBeGreaterThan(0);
    }
  });

  test('cancels the upstream request when the client goes away', async () => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json' } });
    req.on('error', () => undefined);
    const firstByte = new Promise<void>((resolve) => req.once('response', (res) => res.once('data', () => resolve())));
    req.end(JSON.stringify({ model: 'fault-stall-stream', stream: true, messages: [] }));
    await firstByte;
    const inflight = async () => (await Promise.all(upstreams.map((u) => u.stats()))).reduce((n, s) => n + s.inflight, 0);
    expect(await inflight()).toBe(1);
    req.destroy();
    for (let i = 0; i < 50 && (await inflight()) > 0; i++) await sleep(50);
    expect(await inflight()).toBe(0);
  });
});

// The bench runs the floors as bundles: a module whose `main` is guarded by import.meta.url runs
// in every bundle that includes it, so a floor importing another floor would start both.
test('each floor bundle starts its own forwarder only', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ai-lb-floor-bundles-'));
  try {
    const built = await buildBundles(
      {
        'node-floor': fileURLToPath(new URL('./node-floor.ts', import.meta.url)),
        'stream-floor': fileURLToPath(new URL('./stream-floor.ts', import.meta.url)),
      },
      dir,
    );
    expect(readFileSync(built['node-floor'], 'utf8').match(/runForwarderCli\("/g)).toEqual(['runForwarderCli("']);
    const streamFloor = readFileSync(built['stream-floor'], 'utf8');
    expect(streamFloor.match(/runForwarderCli\("[a-z-]+"/g)).toEqual(['runForwarderCli("stream-floor"']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
