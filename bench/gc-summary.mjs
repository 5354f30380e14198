/**
 * What the garbage collector did over a window, from the statistics of node's v8.GCProfiler
 * (one entry per collection, with the heap before and after it): bytes allocated, bytes
 * promoted to the old generation, young objects alive after each scavenge, the main thread's
 * pause. Unlike CPU time these hardly move with the machine's other load, so a change to the
 * gateway's garbage can be measured on a noisy machine. Plain JS: the probe that uses it is
 * preloaded into bundles run without tsx.
 */

/**
 * @param {Array<{gcType: string, cost: number, beforeGC: HeapAt, afterGC: HeapAt}>} statistics
 * @param {number} usedAtStart  used_heap_size when the profiler started
 * @param {number} usedAtEnd    used_heap_size when it stopped
 * @typedef {{heapStatistics: {usedHeapSize: number}, heapSpaceStatistics: Array<{spaceName: string, spaceUsedSize: number}>}} HeapAt
 */
export function summarizeGc(statistics, usedAtStart, usedAtEnd) {
  let allocated = 0;
  let usedBefore = usedAtStart;
  let promoted = 0;
  let survived = 0;
  let scavenges = 0;
  let fullGcs = 0;
  let pauseUs = 0;
  for (const gc of statistics) {
    allocated += Math.max(0, gc.beforeGC.heapStatistics.usedHeapSize - usedBefore);
    usedBefore = gc.afterGC.heapStatistics.usedHeapSize;
    pauseUs += gc.cost;
    if (gc.gcType === 'Scavenge') {
      scavenges++;
      promoted += Math.max(0, oldGeneration(gc.afterGC) - oldGeneration(gc.beforeGC));
      survived += youngGeneration(gc.afterGC);
    } else if (gc.gcType === 'MarkSweepCompact') {
      fullGcs++;
    }
  }
  allocated += Math.max(0, usedAtEnd - usedBefore);
  return { allocated, promoted, survivedPerScavenge: scavenges === 0 ? 0 : survived / scavenges, scavenges, fullGcs, pauseUs };
}

function spaceUsed(heap, names) {
  let sum = 0;
  for (const space of heap.heapSpaceStatistics) if (names.includes(space.spaceName)) sum += space.spaceUsedSize;
  return sum;
}

const OLD = ['old_space', 'large_object_space'];
const YOUNG = ['new_space', 'new_large_object_space'];

function oldGeneration(heap) {
  return spaceUsed(heap, OLD);
}

function youngGeneration(heap) {
  return spaceUsed(heap, YOUNG);
}
