/**
 * Test support (not a test): the cli's entry points by path, and their stderr read back
 * as the JSON log lines it must consist of.
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const entry = (name: string) => fileURLToPath(new URL(`../${name}.ts`, import.meta.url));

export const ENTRIES = {
  start: entry('start'),
  gateway: entry('gateway'),
  monitor: entry('monitor'),
  inventory: entry('inventory'),
} as const;

export interface LogLine {
  level: string;
  service: string;
  msg: string;
  [field: string]: unknown;
}

/** Every stderr line parsed as JSON: a line that is not JSON fails the test here. */
export function logLines(stderr: string): LogLine[] {
  return stderr
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as LogLine);
}

/** A loopback port held by a plain TCP server until `release()`: a port a service cannot bind. */
export async function takePort(): Promise<{ port: number; release(): Promise<void> }> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    release: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
