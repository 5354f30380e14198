/**
 * The monitor's only writer of fleet state, through StateStore (never raw Redis). Each
 * target's result is written as soon as its probe completes, not at the end of the scan:
 * one slow target must not hold back (and let expire) the records of every other node.
 *  - a node that answered: putNode with the whole record and a fresh TTL;
 *  - a target that WAS a node and now fails: markNodeUnhealthy, which keeps the TTL
 *    running so a server that stays dead leaves the state by itself;
 *  - a target that never was a node (a closed port): nothing at all.
 * Every record carries the scan's number and is kept, stale, for FLEET_STALE_LIMIT_SECS
 * past its TTL: if this monitor dies, gateways keep serving it. Only once every target
 * was written is the scan completed (completeScan): from then on records this scan did
 * not refresh are gone as soon as their TTL has run out.
 */
import type { NodeId, NodeState, StateStore } from '@ai-lb/shared';

export interface ScanFailure {
  node: NodeId;
  /** Why, for /v1/nodes and the inventory: "<reason>: <detail>". */
  error: string;
}

export interface PublishResult {
  put: number;
  markedUnhealthy: number;
}

export interface ScanPublisher {
  readonly scan: number;
  node(state: NodeState): Promise<void>;
  failure(failure: ScanFailure, checkedAtMs: number): Promise<void>;
  /** What was written; throws the first write error, if any. */
  finish(): PublishResult;
}

export interface ScanPublisherOptions {
  ttlMs: number;
  keepMs: number;
  /** This scan's number (StateStore.beginScan). */
  scan: number;
}

export function createScanPublisher(store: StateStore, options: ScanPublisherOptions): ScanPublisher {
  const result: PublishResult = { put: 0, markedUnhealthy: 0 };
  // Read once, at the first failure: a /20 scan has thousands of closed ports and a
  // handful of nodes, so one listing beats one markNodeUnhealthy per closed port.
  let known: Promise<Set<NodeId>> | undefined;
  let firstError: { error: unknown } | undefined;

  // After one failed write the rest of this scan writes nothing: the store is likely
  // down, and each further call would wait out its own connect timeout.
  async function write(step: () => Promise<void>): Promise<void> {
    if (firstError) return;
    try {
      await step();
    } catch (error) {
      firstError ??= { error };
    }
  }

  return {
    scan: options.scan,
    node: (state) =>
      write(async () => {
        await store.putNode(state, options.ttlMs, { keepMs: options.keepMs, scan: options.scan });
        result.put++;
      }),
    failure: (failure, checkedAtMs) =>
      write(async () => {
        known ??= store.listNodes().then((nodes) => new Set(nodes.map((n) => n.node)));
        if (!(await known).has(failure.node)) return;
        await store.markNodeUnhealthy(failure.node, failure.error, checkedAtMs);
        result.markedUnhealthy++;
      }),
    finish() {
      if (firstError) throw firstError.error;
      return { ...result };
    },
  };
}
