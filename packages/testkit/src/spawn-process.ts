import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { stopChild } from './start-redis.ts';

export interface SpawnedProcess<Ready> {
  child: ChildProcess;
  pid: number;
  /** The JSON object the process printed on its first stdout line when ready. */
  ready: Ready;
  /** Everything it wrote to stderr so far (for assertions and failure messages). */
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * Runs a TypeScript entry point in its own Node process (through tsx) and waits until it
 * prints one JSON line on stdout, e.g. {"port":12345}. Anything after that line is ignored.
 */
export async function spawnTsProcess<Ready = { port: number }>(
  entry: string,
  args: string[] = [],
  options: {
    env?: NodeJS.ProcessEnv;
    readyTimeoutMs?: number;
    /** e.g. ['--cpu-prof'] (not allowed in NODE_OPTIONS) */
    nodeArgs?: string[];
    /** false: `entry` is plain JavaScript (a bundle), run by node without the tsx loader. */
    tsx?: boolean;
    /** Keep only about the last this many bytes of stderr (a process that logs every request); default: all of it. */
    stderrLimitBytes?: number;
  } = {},
): Promise<SpawnedProcess<Ready>> {
  const loader = options.tsx === false ? [] : ['--import', 'tsx'];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...loader, entry, ...args], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  let stderr = '';
  const limit = options.stderrLimitBytes ?? Number.POSITIVE_INFINITY;
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    // Cut to half the limit when it is passed: the cost of cutting is spread over many chunks.
    if (stderr.length > limit) stderr = stderr.slice(-Math.floor(limit / 2));
  });
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Nobody gets a handle on a child that never got ready: it must not outlive the failure.
      child.kill('SIGKILL');
      reject(new Error(`${entry} not ready in ${options.readyTimeoutMs ?? 15_000} ms: ${stderr}`));
    }, options.readyTimeoutMs ?? 15_000);
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line) as Ready);
      } catch {
        child.kill('SIGKILL');
        reject(new Error(`${entry} printed ${line} instead of a JSON ready line; stderr: ${stderr}`));
      }
      child.stdout!.resume();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${entry} exited with ${code} before it was ready: ${stderr}`));
    });
  });
  return { child, pid: child.pid!, ready, stderr: () => stderr, stop: (signal) => stopChild(child, signal) };
}
