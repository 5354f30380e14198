/**
 * Stream time to first byte: opens `streams` streaming chat requests, `concurrency` at a
 * time, and timestamps the first body byte of each (not the head: a gateway may send
 * headers before the upstream answered, and the first token is what a user waits for).
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { percentile } from './percentile.ts';

export interface TtfbRequest {
  url: string;
  body: string;
  streams: number;
  concurrency: number;
  /** Per-stream bound, so a stuck target cannot hang the bench. */
  timeoutMs?: number;
}

export interface TtfbResult {
  p50Ms: number;
  p99Ms: number;
  /** Streams that failed (non-200, socket error, timeout). */
  errors: number;
}

export async function measureTtfb(options: TtfbRequest): Promise<TtfbResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });
  const samples: number[] = [];
  let errors = 0;
  let started = 0;
  const worker = async () => {
    while (started < options.streams) {
      started++;
      try {
        samples.push(await timeFirstByte(agent, options));
      } catch {
        errors++;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return { p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99), errors };
}

function timeFirstByte(agent: Agent, options: TtfbRequest): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let firstByteMs = NaN;
    const req = request(options.url, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(options.body) },
      timeout: options.timeoutMs ?? 10_000,
    });
    req.once('timeout', () => req.destroy(new Error('stream timed out')));
    req.once('error', reject);
    req.once('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`status ${res.statusCode}`));
      }
      res.once('data', () => (firstByteMs = performance.now() - started));
      res.resume();
      res.once('end', () => (Number.isNaN(firstByteMs) ? reject(new Error('empty stream')) : resolve(firstByteMs)));
      res.once('error', reject);
    });
    req.end(options.body);
  });
}
