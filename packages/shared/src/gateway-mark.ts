/**
 * Response header an ai-lb gateway sets on every response. The monitor skips any target
 * that answers with it, so a gateway is never recorded as a node (no routing loops).
 */
export const GATEWAY_MARK_HEADER = 'x-ai-lb-gateway';
