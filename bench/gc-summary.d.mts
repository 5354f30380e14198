/** Types of gc-summary.mjs (plain JS: the probe that uses it runs without tsx). */
export interface HeapAt {
  heapStatistics: { usedHeapSize: number };
  heapSpaceStatistics: ReadonlyArray<{ spaceName: string; spaceUsedSize: number }>;
}

export interface GcSummary {
  allocated: number;
  promoted: number;
  survivedPerScavenge: number;
  scavenges: number;
  fullGcs: number;
  pauseUs: number;
}

export function summarizeGc(
  statistics: ReadonlyArray<{ gcType: string; cost: number; beforeGC: HeapAt; afterGC: HeapAt }>,
  usedAtStart: number,
  usedAtEnd: number,
): GcSummary;
