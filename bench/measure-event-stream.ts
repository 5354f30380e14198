/**
 * The streaming load: `streams` chat streams open at once through one relay, each fed
 * `eventsPerSec` events by stream-upstream.ts, measured over a fixed window once every
 * stream is open: the relay's CPU per relayed event, and the delay of every event from the
 * upstream writing it (its embedded timestamp) to this client reading it.
 */
import { Agent, request, type ClientRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile } from './percentile.ts';
import { closeGcWindow, openGcWindow } from './gc-window.ts';
import { readCpuMs, readSyscalls } from './process-usage.ts';
import { STREAM_MODEL, type StreamSurface, wallClockMs } from './stream-upstream.ts';

export interface EventStreamLoad {
  url: string;
  /** What the streams ask for: chat completions, or Anthropic's Messages API (the url must match). */
  surface?: StreamSurface;
  streams: number;
  eventsPerSec: number;
  /** Seconds measured once all streams are open (after an unrecorded half second). */
  windowSec: number;
  /** The relay's processes (CPU per event); empty for direct. */
  pids: () => number[];
  /** Processes the relay makes busy (redis-server). */
  auxPids: number[];
  /** The relay's process with bench/gc-probe.mjs loaded (`--gc`): its garbage per event is counted. */
  gcPid?: number;
  /** `--payload engine`: the streams ask for usage (the engines' chunks then carry `"usage":null`). */
  includeUsage?: boolean;
  /** Streams the upstream still serves: the next measurement starts when this is 0. */
  upstreamInflight(): Promise<number>;
}

export interface EventStreamResult {
  /** Streams that got their first event. */
  opened: number;
  events: number;
  eventsPerSec: number;
  /** The relay's CPU (user + system) per event in the window; NaN without pids. */
  cpuUsPerEvent: number;
  auxCpuUsPerEvent: number;
  /** The relay's read and write system calls per event (two is the least: one in, one out). */
  syscallsPerEvent: number;
  /** Bytes the relay allocated and promoted per event (`--gc`), KB; NaN without. */
  allocatedKbPerEvent: number;
  promotedKbPerEvent: number;
  /** The relay's event-loop delay over the window (`--gc`), ms; NaN without. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  delayP50Ms: number;
  delayP99Ms: number;
  /** Streams that failed (not 200, or broken before the window ended). */
  errors: number;
}

const OPEN_BATCH = 100;
const AT = 64; // '@', the start of the timestamp in a content event

/**
 * Reads the timestamps out of event bytes; returns the bytes after the last whole event.
 * Only content events carry an '@' (chat chunks' content, Anthropic's text deltas).
 */
export function readStamps(bytes: Buffer, onStamp: (ms: number) => void): Buffer | null {
  const end = bytes.lastIndexOf('\n\n');
  if (end === -1) return bytes;
  for (let at = bytes.indexOf(AT); at !== -1 && at < end; at = bytes.indexOf(AT, at + 1)) {
    const stop = bytes.indexOf(34, at); // the closing quote
    onStamp(Number(bytes.toString('latin1', at + 1, stop)));
  }
  return end + 2 < bytes.length ? bytes.subarray(end + 2) : null;
}

export async function measureEventStream(load: EventStreamLoad): Promise<EventStreamResult> {
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const requests: ClientRequest[] = [];
  const state: StreamState = { opened: 0, refused: 0, broken: 0, recording: false, events: 0, delays: [] };
  const body = JSON.stringify({
    model: STREAM_MODEL,
    messages: [{ role: 'user', content: 'Count.' }],
    stream: true,
    // Longer than the run: the bench ends the streams itself after the window.
    max_tokens: load.eventsPerSec * (load.windowSec + 60),
    ...(load.includeUsage && load.surface !== 'messages' ? { stream_options: { include_usage: true } } : {}),
  });
  try {
    const deadline = Date.now() + 30_000;
    for (let i = 0; i < load.streams && Date.now() < deadline; i += OPEN_BATCH) {
      const batch = Math.min(load.streams, i + OPEN_BATCH);
      for (let j = i; j < batch; j++) requests.push(openStream(agent, load.url, body, state));
      while (state.opened + state.refused < batch * 0.9 && Date.now() < deadline) await sleep(20);
    }
    while (state.opened + state.refused < load.streams && Date.now() < deadline) await sleep(20);
    await sleep(500); // the burst of opening passes
    const pids = load.pids();
    const cpu = () => pids.reduce((sum, pid) => sum + readCpuMs(pid), 0);
    const auxCpu = () => load.auxPids.reduce((sum, pid) => sum + readCpuMs(pid), 0);
    const syscalls = () => pids.reduce((sum, pid) => sum + readSyscalls(pid), 0);
    if (load.gcPid !== undefined) openGcWindow(load.gcPid);
    const [cpuBefore, auxBefore, callsBefore, started] = [cpu(), auxCpu(), syscalls(), performance.now()];
    state.recording = true;
    await sleep(load.windowSec * 1000);
    state.recording = false;
    const [cpuAfter, auxAfter, callsAfter, seconds] = [cpu(), auxCpu(), syscalls(), (performance.now() - started) / 1000];
    const garbage = load.gcPid === undefined ? null : await closeGcWindow(load.gcPid, state.events);
    const perEvent = (ms: number) => (state.events > 0 ? (ms * 1000) / state.events : NaN);
    return {
      opened: state.opened,
      events: state.events,
      eventsPerSec: state.events / seconds,
      cpuUsPerEvent: pids.length === 0 ? NaN : perEvent(cpuAfter - cpuBefore),
      auxCpuUsPerEvent: load.auxPids.length === 0 ? NaN : perEvent(auxAfter - auxBefore),
      syscallsPerEvent: pids.length === 0 || state.events === 0 ? NaN : (callsAfter - callsBefore) / state.events,
      allocatedKbPerEvent: garbage?.allocatedKb ?? NaN,
      promotedKbPerEvent: garbage?.promotedKb ?? NaN,
      loopDelayP99Ms: garbage?.loopDelayP99Ms ?? NaN,
      loopDelayMaxMs: garbage?.loopDelayMaxMs ?? NaN,
      delayP50Ms: percentile(state.delays, 50),
      delayP99Ms: percentile(state.delays, 99),
      errors: state.broken + (load.streams - state.opened),
    };
  } finally {
    for (const req of requests) req.destroy();
    agent.destroy();
    const deadline = Date.now() + 10_000;
    while ((await load.upstreamInflight()) > 0 && Date.now() < deadline) await sleep(50);
  }
}

interface StreamState {
  opened: number;
  /** Answered with another status than 200, or failed before their first event. */
  refused: number;
  /** Opened, then failed or ended while the bench still read them. */
  broken: number;
  recording: boolean;
  events: number;
  delays: number[];
}

function openStream(agent: Agent, url: string, body: string, state: StreamState): ClientRequest {
  const req = request(url, {
    method: 'POST',
    agent,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  let failed = false;
  let opened = false;
  const fail = () => {
    if (failed || req.destroyed) return;
    failed = true;
    if (opened) state.broken++;
    else state.refused++;
  };
  req.on('error', fail);
  req.once('response', (res) => {
    res.on('error', fail);
    if (res.statusCode !== 200) {
      fail();
      return void res.resume();
    }
    let rest: Buffer | null = null;
    const onStamp = (ms: number) => {
      if (!state.recording) return;
      state.events++;
      state.delays.push(wallClockMs() - ms);
    };
    res.on('data', (chunk: Buffer) => {
      if (!opened) {
        opened = true;
        state.opened++;
      }
      rest = readStamps(rest === null ? chunk : Buffer.concat([rest, chunk]), onStamp);
    });
    // A stream that ends while the bench still reads it broke (the upstream sends far more).
    res.once('end', () => {
      if (!req.destroyed) fail();
    });
  });
  req.end(body);
  return req;
}
