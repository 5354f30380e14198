import { describe, expect, it } from 'vitest';
import { summarizeGc } from './gc-summary.mjs';

/** A heap as GCProfiler reports it: total used, and the spaces that matter here. */
function heap(used: number, spaces: Record<string, number>) {
  return {
    heapStatistics: { usedHeapSize: used },
    heapSpaceStatistics: Object.entries(spaces).map(([spaceName, spaceUsedSize]) => ({ spaceName, spaceUsedSize })),
  };
}

describe('summarizeGc', () => {
  it('adds up allocation between collections, promotion and survivors of scavenges, and the pause', () => {
    const statistics = [
      {
        gcType: 'Scavenge',
        cost: 1500,
        beforeGC: heap(9_000, { new_space: 8_000, old_space: 1_000 }),
        afterGC: heap(2_500, { new_space: 1_000, old_space: 1_500 }),
      },
      {
        gcType: 'Scavenge',
        cost: 1000,
        beforeGC: heap(10_500, { new_space: 8_000, old_space: 1_500, large_object_space: 1_000 }),
        afterGC: heap(4_000, { new_space: 1_200, new_large_object_space: 300, old_space: 1_500, large_object_space: 1_000 }),
      },
      {
        gcType: 'MarkSweepCompact',
        cost: 5000,
        beforeGC: heap(4_500, { new_space: 500, old_space: 4_000 }),
        afterGC: heap(3_000, { new_space: 0, old_space: 3_000 }),
      },
    ];
    const summary = summarizeGc(statistics, 1_000, 3_700);
    // 9,000 − 1,000, then 10,500 − 2,500, then 4,500 − 4,000, then 3,700 − 3,000 to the end.
    expect(summary.allocated).toBe(8_000 + 8_000 + 500 + 700);
    // Old-generation growth across each scavenge: 500 in the first, none in the second.
    expect(summary.promoted).toBe(500);
    expect(summary.survivedPerScavenge).toBe((1_000 + 1_500) / 2);
    expect(summary).toMatchObject({ scavenges: 2, fullGcs: 1, pauseUs: 7_500 });
  });

  it('a window without a collection: what the heap grew by, nothing else', () => {
    expect(summarizeGc([], 5_000, 7_500)).toEqual({
      allocated: 2_500,
      promoted: 0,
      survivedPerScavenge: 0,
      scavenges: 0,
      fullGcs: 0,
      pauseUs: 0,
    });
  });
});
