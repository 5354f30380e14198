import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import { describe, expect, test } from 'vitest';
import type { EventStreamResult } from './measure-event-stream.ts';
import { readStamps } from './measure-event-stream.ts';
import { nginxConfig } from './start-nginx.ts';
import { createStreamUpstream, MESSAGES_SHAPE, STREAM_MODEL, stampedEvent, streamShapes } from './stream-upstream.ts';
import { checkStreamTargets, formatStreamReport, summarizeStreamRounds, type StreamRound } from './summarize-stream.ts';

const result = (cpu: number, p99: number, aux = NaN, allocatedKb = NaN): EventStreamResult => ({
  opened: 500,
  events: 50_000,
  eventsPerSec: 10_000,
  cpuUsPerEvent: cpu,
  auxCpuUsPerEvent: aux,
  syscallsPerEvent: 2,
  allocatedKbPerEvent: allocatedKb,
  promotedKbPerEvent: allocatedKb / 100,
  loopDelayP99Ms: allocatedKb * 2,
  loopDelayMaxMs: allocatedKb * 10,
  delayP50Ms: p99 / 2,
  delayP99Ms: p99,
  errors: 0,
});

describe('readStamps', () => {
  test('reads the timestamp of every whole event and keeps the unfinished rest for the next chunk', () => {
    const a = stampedEvent();
    const b = stampedEvent();
    const stamps: number[] = [];
    const bytes = Buffer.from(a + b);
    const rest = readStamps(bytes.subarray(0, a.length + 40), (ms) => stamps.push(ms));
    expect(stamps).toHaveLength(1);
    expect(rest?.toString()).toBe(b.slice(0, 40));
    expect(readStamps(Buffer.concat([rest!, bytes.subarray(a.length + 40)]), (ms) => stamps.push(ms))).toBeNull();
    expect(stamps).toHaveLength(2);
    expect(stamps.every((ms) => Math.abs(ms - Date.now()) < 60_000)).toBe(true);
  });

  test('an upstream event is an OpenAI chat chunk of about 165 bytes', () => {
    const event = stampedEvent();
    expect(event.length).toBeGreaterThan(150);
    expect(event.length).toBeLessThan(180);
    expect(JSON.parse(event.slice('data: '.length)).object).toBe('chat.completion.chunk');
  });

  test('--payload engine: the chunks of four engines, each a chat chunk whose stamp is read, and their usage ends', () => {
    const shapes = streamShapes('engine');
    expect(shapes).toHaveLength(4);
    const chunks = shapes.map((shape) => stampedEvent(shape));
    const keyOrders = new Set(chunks.map((c) => Object.keys(JSON.parse(c.slice('data: '.length))).join()));
    expect(keyOrders.size).toBe(4);
    const stamps: number[] = [];
    expect(readStamps(Buffer.from(chunks.join('')), (ms) => stamps.push(ms))).toBeNull();
    expect(stamps).toHaveLength(4);
    expect(stamps.every((ms) => Math.abs(ms - Date.now()) < 60_000)).toBe(true);
    for (const shape of shapes) {
      const events = shape.end.split('\n\n').filter((e) => e !== '' && e !== 'data: [DONE]');
      expect(events.map((e) => JSON.parse(e.slice('data: '.length))).some((e) => e.usage?.completion_tokens > 0)).toBe(true);
      expect(shape.end.endsWith('data: [DONE]\n\n')).toBe(true);
    }
  });
});

describe('--stream-surface messages', () => {
  test("the upstream streams Anthropic's Messages events that the official SDK reads, each text delta a stamp", async () => {
    const server = createStreamUpstream(50, 'flat', 'messages');
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = new Anthropic({
        baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        apiKey: 'unused',
        maxRetries: 0,
      });
      const stream = await client.messages.create({
        model: STREAM_MODEL,
        max_tokens: 5,
        stream: true,
        messages: [{ role: 'user', content: 'Count.' }],
      });
      const types: string[] = [];
      const texts: string[] = [];
      for await (const event of stream) {
        types.push(event.type);
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') texts.push(event.delta.text);
      }
      expect(types[0]).toBe('message_start');
      expect(types.at(-1)).toBe('message_stop');
      expect(texts).toHaveLength(5);
      expect(texts.every((t) => Math.abs(Number(t.slice(1)) - Date.now()) < 60_000)).toBe(true);
      const stamps: number[] = [];
      const events = MESSAGES_SHAPE.start! + stampedEvent(MESSAGES_SHAPE) + MESSAGES_SHAPE.end;
      expect(readStamps(Buffer.from(events), (ms) => stamps.push(ms))).toBeNull();
      expect(stamps).toHaveLength(1);
      // The route check the monitor makes (POST {}) is refused as vLLM refuses it.
      const refused = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/messages`, { method: 'POST', body: '{}' });
      expect(refused.status).toBe(400);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('summarizeStreamRounds', () => {
  test('CPU (with redis-server) ÷ the floor relay and p99 over direct and over the floor, per round, then medians', () => {
    const rounds: StreamRound[] = [
      { direct: result(NaN, 1), 'stream-floor': result(20, 3), 'gateway-redis': result(22, 4, 1) },
      { direct: result(NaN, 2), 'stream-floor': result(10, 3), 'gateway-redis': result(12, 5, 0) },
      { direct: result(NaN, 1), 'stream-floor': result(20, 2), 'gateway-redis': result(40, 9, 0) },
    ];
    const [, floor, redis] = summarizeStreamRounds(rounds, ['direct', 'stream-floor', 'gateway-redis']);
    expect(floor.cpuVsFloor).toBe(1);
    expect(redis.cpuVsFloor).toBeCloseTo(1.2); // 1.15, 1.2, 2
    expect(redis.addedP99Ms).toBe(3); // 3, 3, 8
    expect(redis.addedP99VsFloorMs).toBe(2); // 3 − 2, 3 − 1, 8 − 1
    const checks = checkStreamTargets([redis]);
    expect(checks.map((c) => c.pass)).toEqual([false, false]);
    const report = formatStreamReport([floor, redis], checks, { streams: 500, eventsPerSec: 20, windowSec: 5, rounds: 3 });
    expect(report).toContain('500 streams × 20 events/s');
    expect(report).toContain('FAIL  gateway-redis: CPU per relayed event vs floor relay ≤ 1.15× — measured 1.20');
    expect(report).not.toContain('allocates');
  });

  test('--gc: the garbage per event and the event-loop delay, medians, one line per relay that counted them', () => {
    const rounds: StreamRound[] = [1.5, 1.2, 1.4].map((kb, i) => ({
      'stream-floor': result(20, 3, NaN, [0.9, 1.1, 1.0][i]),
      'gateway-memory': result(22, 3, NaN, kb),
      nginx: result(10, 3),
    }));
    const summaries = summarizeStreamRounds(rounds, ['stream-floor', 'gateway-memory', 'nginx']);
    expect(summaries.map((s) => s.allocatedKbPerEvent)).toEqual([1.0, 1.4, NaN]);
    const report = formatStreamReport(summaries, [], { streams: 500, eventsPerSec: 20, windowSec: 5, rounds: 3 });
    expect(report).toContain(
      'stream-floor: allocates 1.00 KB per event, promotes 0.010 KB; event-loop delay p99 2.00 ms, max 10.0 ms (--gc)',
    );
    expect(report).toContain(
      'gateway-memory: allocates 1.40 KB per event, promotes 0.014 KB; event-loop delay p99 2.80 ms, max 14.0 ms (--gc)',
    );
    expect(report).not.toContain('nginx: allocates');
  });
});

describe('nginxConfig', () => {
  test('one worker, unbuffered proxying to the upstreams with keep-alive, on the given loopback port', () => {
    const conf = nginxConfig('/tmp/x', 8123, ['127.0.0.1:9001', '127.0.0.1:9002']);
    expect(conf).toContain('listen 127.0.0.1:8123;');
    expect(conf).toContain('proxy_buffering off;');
    expect(conf).toContain('upstream llm { server 127.0.0.1:9001; server 127.0.0.1:9002; keepalive 64; }');
    expect(conf).toContain('proxy_set_header Connection "";');
  });
});
