import { GatewayError, type NodeId, type NodeState } from '@ai-lb/shared';

export interface SelectCandidatesInput {
  model: string;
  /** Healthy nodes that list the model, sorted by id (FleetCache.healthyNodesFor). */
  servingNodes: readonly NodeState[];
  /** Whether the cached circuit of a node is open now. */
  circuitOpen: (node: NodeId) => boolean;
  /** `?node=host:port`, or null. */
  forcedNode: string | null;
}

/**
 * The nodes a request may go to, pure. Nodes whose circuit the cache sees open are left
 * out so round-robin spreads over the working ones — unless that leaves none: then all go
 * to acquireSlot, which knows the live circuit state and may hand out the half-open probe.
 * Caps are not checked here: acquireSlot does that with live counts.
 */
export function selectCandidates(input: SelectCandidatesInput): NodeState[] {
  if (input.forcedNode !== null) {
    // ?node= is only ever a choice among fleet nodes: the gateway never dials an address
    // a client made up.
    const wanted = input.forcedNode.trim().toLowerCase();
    const node = input.servingNodes.find((n) => n.node.toLowerCase() === wanted);
    if (node === undefined) {
      throw new GatewayError(
        'node_not_eligible',
        `node '${input.forcedNode.slice(0, 100)}' is not a healthy known node serving model '${input.model}'`,
        {
          param: 'node',
        },
      );
    }
    return [node];
  }
  const closed = input.servingNodes.filter((n) => !input.circuitOpen(n.node));
  return closed.length > 0 ? closed : [...input.servingNodes];
}
