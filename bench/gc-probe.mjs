/**
 * Preload into a process to count its garbage over a window (`bench/ab-gateways.ts --gc`):
 *
 *   AI_LB_GC_PROBE_DIR=/tmp/x node --import ./bench/gc-probe.mjs dist/start.mjs
 *   kill -USR2 <pid>   # starts the window
 *   kill -USR2 <pid>   # ends it: writes $AI_LB_GC_PROBE_DIR/gc-<pid>.json (see gc-summary.mjs)
 *
 * Over the same window it samples the event loop's delay at 1 ms resolution: a stall of a few
 * milliseconds (a GC, a monitor scan in the same process) is what a relayed event waits for.
 */
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { GCProfiler, getHeapStatistics } from 'node:v8';
import { summarizeGc } from './gc-summary.mjs';

const dir = process.env.AI_LB_GC_PROBE_DIR ?? '.';
let profiler = null;
let loopDelay = null;
let usedAtStart = 0;

process.on('SIGUSR2', () => {
  if (profiler === null) {
    usedAtStart = getHeapStatistics().used_heap_size;
    profiler = new GCProfiler();
    profiler.start();
    loopDelay = monitorEventLoopDelay({ resolution: 1 });
    loopDelay.enable();
    return;
  }
  const { statistics } = profiler.stop();
  profiler = null;
  loopDelay.disable();
  // The histogram holds nanoseconds; it includes the 1 ms resolution itself.
  const loop = { loopDelayP99Ms: loopDelay.percentile(99) / 1e6, loopDelayMaxMs: loopDelay.max / 1e6 };
  loopDelay = null;
  const summary = summarizeGc(statistics, usedAtStart, getHeapStatistics().used_heap_size);
  writeFileSync(`${dir}/gc-${process.pid}.json`, JSON.stringify({ ...summary, ...loop }));
});
