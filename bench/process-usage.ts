/**
 * What a process on this machine has used so far, read from /proc (Linux only): the bench
 * measures the forwarding process from outside, so the numbers include everything that
 * process does (GC, timers, the monitor when it runs in-process) and nothing of the bench.
 */
import { readFileSync } from 'node:fs';

/** Kernel clock ticks per second; 100 on every Linux the project targets (getconf CLK_TCK). */
const CLOCK_TICKS_PER_SEC = 100;

/** User + system CPU time the process has consumed, in milliseconds. */
export function readCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name: state is fields[0], so utime (field 14) is fields[11], stime fields[12].
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS_PER_SEC;
}

/** Resident set size of the process, in bytes. */
export function readRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status (process gone?)`);
  return Number(match[1]) * 1024;
}

/** Read and write system calls (read, write, writev, recv, send…) the process has made so far. */
export function readSyscalls(pid: number): number {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    return Number(/^syscr:\s+(\d+)$/m.exec(io)?.[1] ?? NaN) + Number(/^syscw:\s+(\d+)$/m.exec(io)?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

export function processUsageAvailable(): boolean {
  try {
    readCpuMs(process.pid);
    return true;
  } catch {
    return false;
  }
}
