/**
 * Runs wrk (one thread, N keep-alive connections, fixed duration) against a POST endpoint.
 * wrk is C and event-driven, so on this 2-core machine it takes far less CPU from the
 * target than a Node load generator would; bench/wrk-post.lua prints the result as JSON.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadRequest, LoadResult } from './load-result.ts';

const SCRIPT = fileURLToPath(new URL('./wrk-post.lua', import.meta.url));
const MARK = 'BENCH_JSON ';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export function wrkInstalled(): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

export async function runWrk(request: LoadRequest): Promise<LoadResult> {
  const args = ['-t1', `-c${request.connections}`, `-d${request.durationSec}s`, '--timeout', '10s', '-s', SCRIPT, request.url];
  const child = spawn('wrk', args, { env: { ...process.env, BENCH_BODY: request.body }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // wrk stops itself after -d; the guard only covers a wedged wrk (bounded in time).
  const guard = setTimeout(() => child.kill('SIGKILL'), (request.durationSec + 15) * 1000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (exitCode) => resolve(exitCode));
  }).finally(() => {
    clearTimeout(guard);
    live.delete(child);
  });
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${stderr.trim() || stdout.trim()}`);
  return parseWrkOutput(stdout);
}

interface WrkSummary {
  requests: number;
  durationUs: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  statusErrors: number;
  timeouts: number;
  p50Us: number;
  p99Us: number;
}

/** Reads the line bench/wrk-post.lua's done() printed. */
export function parseWrkOutput(stdout: string): LoadResult {
  const line = stdout.split('\n').find((l) => l.startsWith(MARK));
  if (!line) throw new Error(`wrk printed no ${MARK.trim()} line (is ${SCRIPT} in use?):\n${stdout}`);
  const s = JSON.parse(line.slice(MARK.length)) as WrkSummary;
  const durationSec = s.durationUs / 1e6;
  return {
    generator: 'wrk',
    requests: s.requests,
    durationSec,
    requestsPerSec: durationSec > 0 ? s.requests / durationSec : 0,
    p50Ms: s.p50Us / 1000,
    p99Ms: s.p99Us / 1000,
    errors: s.connectErrors + s.readErrors + s.writeErrors + s.statusErrors + s.timeouts,
  };
}
