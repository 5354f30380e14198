/**
 * nginx as a reference relay for the streaming phase, when it is installed: one worker,
 * proxy_buffering off (events go out as they arrive), keep-alive to the upstreams, no
 * access log. A throw-away config and prefix in a temp directory, a free loopback port, and
 * `daemon off` so the bench owns the master process and stops it by its PID.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stopChild, waitForPort } from '@ai-lb/testkit';

const CANDIDATES = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx', '/usr/local/nginx/sbin/nginx'];

export function nginxBinary(): string | null {
  return CANDIDATES.find((path) => existsSync(path)) ?? null;
}

export interface StartedNginx {
  baseUrl: string;
  /** The master process; its worker's pid is listed by workerPids(). */
  pid: number;
  workerPids(): number[];
  stop(): Promise<void>;
}

/** The config, as a pure function of its inputs (tested). */
export function nginxConfig(dir: string, port: number, upstreams: readonly string[]): string {
  return `worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  upstream llm { ${upstreams.map((u) => `server ${u};`).join(' ')} keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://llm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
`;
}

export async function startNginx(binary: string, upstreams: readonly string[]): Promise<StartedNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'ai-lb-bench-nginx-'));
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(dir, port, upstreams));
  const child = spawn(binary, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const stop = async () => {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port, 10_000, () =>
      child.exitCode !== null ? new Error(`nginx exited with ${child.exitCode}: ${stderr}`) : undefined,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    workerPids: () => childPids(child.pid!),
    stop,
  };
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
