/**
 * An upstream answer a translator cannot turn into the client's format (not a chat
 * completion, tool arguments that are not JSON). It carries the code the failover
 * classification already knows for answers the gateway cannot pass on, so a translated
 * request is judged by the same rules as a passed-through one.
 */
export class UpstreamAnswerError extends Error {
  readonly code = 'AI_LB_BAD_RESPONSE' as const;

  constructor(message: string) {
    super(message);
    this.name = 'UpstreamAnswerError';
  }
}
