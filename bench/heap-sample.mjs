/**
 * Allocation sampling that keeps the objects GC already collected (what `--heap-prof`
 * leaves out), for finding where a process allocates per request or per stream rather than
 * what it holds. Preload it into the process to study, load it, then send SIGUSR2:
 *
 *   node --import ./bench/heap-sample.mjs .bench-out/js/gateway.mjs …
 *   kill -USR2 <pid>     # writes ./heap-sample.<pid>.heapprofile (open in Chrome DevTools → Memory)
 *
 * Found the memory store's per-acquire lease sweep (docs/performance.md, change 20).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const session = new Session();
session.connect();
session.post('HeapProfiler.enable');
session.post('HeapProfiler.startSampling', {
  samplingInterval: 4096,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
process.on('SIGUSR2', () => {
  session.post('HeapProfiler.stopSampling', (error, result) => {
    if (error) return void process.stderr.write(`heap-sample: ${error.message}\n`);
    const file = `heap-sample.${process.pid}.heapprofile`;
    writeFileSync(file, JSON.stringify(result.profile));
    process.stderr.write(`heap-sample: wrote ${file}\n`);
  });
});
