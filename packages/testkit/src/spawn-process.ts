import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    /**
     * For a process that logs every request (the gateway under the bench's load): its stderr
     * goes to a file, as a deployment's log does, instead of a pipe into this process, whose
     * decoding and keeping it would cost CPU on the machine being measured. stderr() then gives
     * about the last `keepBytes` of it. The file is removed when the process exits.
     */
    stderrToFile?: { keepBytes: number };
  } = {},
): Promise<SpawnedProcess<Ready>> {
  const loader = options.tsx === false ? [] : ['--import', 'tsx'];
  const log = options.stderrToFile === undefined ? null : new StderrFile(options.stderrToFile.keepBytes);
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...loader, entry, ...args], {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', log === null ? 'pipe' : log.fd],
    });
  } catch (error) {
    log?.remove();
    throw error;
  } finally {
    log?.closeOurs();
  }
  live.add(child);
  child.once('exit', () => {
    live.delete(child);
    log?.remove();
  });
  let piped = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    piped += chunk.toString();
  });
  const stderr = () => (log === null ? piped : log.tail());
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Nobody gets a handle on a child that never got ready: it must not outlive the failure.
      child.kill('SIGKILL');
      reject(new Error(`${entry} not ready in ${options.readyTimeoutMs ?? 15_000} ms: ${stderr()}`));
    }, options.readyTimeoutMs ?? 15_000);
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line) as Ready);
      } catch {
        child.kill('SIGKILL');
        reject(new Error(`${entry} printed ${line} instead of a JSON ready line; stderr: ${stderr()}`));
      }
      child.stdout!.resume();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${entry} exited with ${code} before it was ready: ${stderr()}`));
    });
  });
  return { child, pid: child.pid!, ready, stderr, stop: (signal) => stopChild(child, signal) };
}

/**
 * A child's stderr in a file of its own. The child appends (O_APPEND), so the file can be cut
 * back under it: once it passes 64 × keepBytes, its tail is kept here and the file emptied,
 * so a long load does not fill the disk.
 */
class StderrFile {
  readonly fd: number;
  private readonly dir = mkdtempSync(join(tmpdir(), 'ai-lb-stderr-'));
  private readonly path = join(this.dir, 'stderr.log');
  private kept: Buffer = Buffer.alloc(0);
  private readonly trim: NodeJS.Timeout;
  private removed = false;

  constructor(private readonly keepBytes: number) {
    this.fd = openSync(this.path, 'a');
    this.trim = setInterval(() => {
      if ((statSync(this.path, { throwIfNoEntry: false })?.size ?? 0) <= 64 * keepBytes) return;
      this.kept = this.lastBytes();
      truncateSync(this.path, 0);
    }, 1000);
    this.trim.unref();
  }

  /** The child has its own copy of the descriptor once spawned. */
  closeOurs(): void {
    closeSync(this.fd);
  }

  tail(): string {
    return this.lastBytes().toString();
  }

  remove(): void {
    if (this.removed) return;
    this.kept = this.lastBytes();
    this.removed = true;
    clearInterval(this.trim);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private lastBytes(): Buffer {
    if (this.removed) return this.kept;
    const fd = openSync(this.path, 'r');
    try {
      const { size } = fstatSync(fd);
      const length = Math.min(size, this.keepBytes);
      const fresh = Buffer.alloc(length);
      readSync(fd, fresh, 0, length, size - length);
      const both = Buffer.concat([this.kept, fresh]);
      return both.subarray(Math.max(0, both.length - this.keepBytes));
    } finally {
      closeSync(fd);
    }
  }
}
