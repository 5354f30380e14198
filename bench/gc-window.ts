/**
 * A window of a process's garbage, counted by bench/gc-probe.mjs preloaded into it (`--gc`
 * of `pnpm bench` and of ab-gateways.ts): SIGUSR2 opens it, SIGUSR2 closes it and the probe
 * writes what it counted to `<dir>/gc-<pid>.json`.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitUntil } from '@ai-lb/testkit';
import type { GcSummary } from './gc-summary.mjs';

/** The node flags that load the probe. */
export const GC_PROBE_ARGS = ['--import', fileURLToPath(new URL('./gc-probe.mjs', import.meta.url))];

/** Where the probes write: set before the processes start (they inherit it). */
export function useGcProbeDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
  process.env.AI_LB_GC_PROBE_DIR = dir;
}

export interface GcPerRequest {
  allocatedKb: number;
  promotedKb: number;
  /** Young bytes alive after a scavenge (the mean over the window), KB. */
  survivedKb: number;
  pauseUs: number;
  /** The event loop's delay over the window (1 ms resolution, included), ms. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

/** What gc-probe.mjs writes: the GC summary and the event loop's delay over the window. */
type ProbeFile = GcSummary & { loopDelayP99Ms: number; loopDelayMaxMs: number };

export function openGcWindow(pid: number): void {
  process.kill(pid, 'SIGUSR2');
}

/** Closes the window opened in `pid` and reads what it counted, per request. */
export async function closeGcWindow(pid: number, requests: number): Promise<GcPerRequest> {
  const file = join(process.env.AI_LB_GC_PROBE_DIR ?? '.', `gc-${pid}.json`);
  process.kill(pid, 'SIGUSR2');
  let g: ProbeFile | undefined;
  // A file not there yet, or not whole yet (another process writes it), is read again.
  await waitUntil(
    () => {
      g = JSON.parse(readFileSync(file, 'utf8')) as ProbeFile;
      return true;
    },
    { timeoutMs: 5000, what: `garbage counts from pid ${pid}` },
  );
  rmSync(file);
  if (g === undefined) throw new Error(`no garbage counts from pid ${pid}`);
  const per = (value: number) => (requests > 0 ? value / requests : NaN);
  return {
    allocatedKb: per(g.allocated / 1024),
    promotedKb: per(g.promoted / 1024),
    survivedKb: g.survivedPerScavenge / 1024,
    pauseUs: per(g.pauseUs),
    loopDelayP99Ms: g.loopDelayP99Ms,
    loopDelayMaxMs: g.loopDelayMaxMs,
  };
}
