/**
 * Memory with many open streams: opens `count` streaming requests whose upstream sends a
 * first chunk and then stays silent (the fake server's `fault-stall-stream` model), waits
 * until every client has its first byte — so each stream is really open end to end — then
 * reads the forwarding process's RSS. Then it drops every client and times how long the
 * upstreams take to see all their requests gone: a forwarder that does not cancel upstream
 * requests on client disconnect shows here as "not released".
 */
import { Agent, request, type ClientRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { readRssBytes } from './process-usage.ts';

export interface HeldStreamsRequest {
  url: string;
  body: string;
  count: number;
  /** The forwarding process whose RSS is read. */
  pid: number;
  /** Requests the upstreams hold open right now (sum of the fake servers' stats.inflight). */
  upstreamInflight(): Promise<number>;
  openTimeoutMs?: number;
}

export interface HeldStreamsResult {
  /** Streams that reached their first byte within openTimeoutMs. */
  opened: number;
  rssIdleMb: number;
  rssMb: number;
  /** ms from dropping the clients until the upstreams held nothing; NaN when not within 10 s. */
  releasedMs: number;
}

const OPEN_BATCH = 100; // under the default listen backlog (511), so no SYN is dropped and retried

export async function measureHeldStreams(options: HeldStreamsRequest): Promise<HeldStreamsResult> {
  const rssIdleMb = readRssBytes(options.pid) / 2 ** 20;
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const requests: ClientRequest[] = [];
  let opened = 0;
  try {
    const deadline = Date.now() + (options.openTimeoutMs ?? 20_000);
    for (let i = 0; i < options.count && Date.now() < deadline; i += OPEN_BATCH) {
      for (let j = i; j < Math.min(options.count, i + OPEN_BATCH); j++) {
        requests.push(openStream(agent, options, () => opened++));
      }
      await waitFor(() => opened >= Math.min(options.count, i + OPEN_BATCH) * 0.9, deadline);
    }
    await waitFor(() => opened >= options.count, deadline);
    await sleep(300); // let the forwarder's allocations settle before reading RSS
    let rssBytes = 0;
    for (let i = 0; i < 3; i++, await sleep(100)) rssBytes = Math.max(rssBytes, readRssBytes(options.pid));
    return { opened, rssIdleMb, rssMb: rssBytes / 2 ** 20, releasedMs: await dropAll(requests, options) };
  } finally {
    for (const req of requests) req.destroy();
    agent.destroy();
  }
}

function openStream(agent: Agent, options: HeldStreamsRequest, onFirstByte: () => void): ClientRequest {
  const req = request(options.url, {
    method: 'POST',
    agent,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(options.body) },
  });
  req.on('error', () => undefined); // destroyed on purpose at the end
  req.once('response', (res) => {
    res.on('error', () => undefined);
    if (res.statusCode !== 200) return void res.resume();
    res.once('data', onFirstByte);
  });
  req.end(options.body);
  return req;
}

async function dropAll(requests: ClientRequest[], options: HeldStreamsRequest): Promise<number> {
  const started = Date.now();
  for (const req of requests) req.destroy();
  const deadline = started + 10_000;
  while (Date.now() < deadline) {
    if ((await options.upstreamInflight()) === 0) return Date.now() - started;
    await sleep(50);
  }
  return NaN;
}

async function waitFor(done: () => boolean, deadline: number) {
  while (!done() && Date.now() < deadline) await sleep(20);
}
