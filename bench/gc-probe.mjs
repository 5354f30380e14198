/**
 * Preload into a process to count its garbage over a window (`bench/ab-gateways.ts --gc`):
 *
 *   AI_LB_GC_PROBE_DIR=/tmp/x node --import ./bench/gc-probe.mjs dist/start.mjs
 *   kill -USR2 <pid>   # starts the window
 *   kill -USR2 <pid>   # ends it: writes $AI_LB_GC_PROBE_DIR/gc-<pid>.json (see gc-summary.mjs)
 */
import { writeFileSync } from 'node:fs';
import { GCProfiler, getHeapStatistics } from 'node:v8';
import { summarizeGc } from './gc-summary.mjs';

const dir = process.env.AI_LB_GC_PROBE_DIR ?? '.';
let profiler = null;
let usedAtStart = 0;

process.on('SIGUSR2', () => {
  if (profiler === null) {
    usedAtStart = getHeapStatistics().used_heap_size;
    profiler = new GCProfiler();
    profiler.start();
    return;
  }
  const { statistics } = profiler.stop();
  profiler = null;
  const summary = summarizeGc(statistics, usedAtStart, getHeapStatistics().used_heap_size);
  writeFileSync(`${dir}/gc-${process.pid}.json`, JSON.stringify(summary));
});
