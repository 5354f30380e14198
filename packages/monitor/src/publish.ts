/**
 * The monitor's only writer of fleet state, through StateStore (never raw Redis):
 *  - a node that answered: putNode with the whole record and a fresh TTL;
 *  - a target that WAS a node and now fails: markNodeUnhealthy, which keeps the TTL
 *    running so a server that stays dead leaves the state by itself (SPEC "Monitor");
 *  - a target that never was a node (a closed port): nothing at all.
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

export async function publishScan(
  store: StateStore,
  scan: { nodes: readonly NodeState[]; failures: readonly ScanFailure[] },
  options: { ttlMs: number; checkedAtMs: number },
): Promise<PublishResult> {
  // One read of the fleet instead of one markNodeUnhealthy per closed port: a /20 scan
  // has thousands of failures and a handful of nodes.
  const known = scan.failures.length > 0 ? new Set((await store.listNodes()).map((n) => n.node)) : new Set<NodeId>();
  const lost = scan.failures.filter((failure) => known.has(failure.node));
  await Promise.all([
    ...scan.nodes.map((node) => store.putNode(node, options.ttlMs)),
    ...lost.map((failure) => store.markNodeUnhealthy(failure.node, failure.error, options.checkedAtMs)),
  ]);
  return { put: scan.nodes.length, markedUnhealthy: lost.length };
}
