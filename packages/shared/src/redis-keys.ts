import type { NodeId } from './types.ts';

/**
 * The only place a Redis key string is built. Every key lives under a prefix
 * (REDIS_KEY_PREFIX, default "ai-lb:") so parallel tests and tenants never collide.
 *
 * | key                         | type    | TTL                                   | writer  | readers          |
 * |-----------------------------|---------|---------------------------------------|---------|------------------|
 * | node:{host:port}            | string  | NodeState JSON + freshUntilMs + scan; PX nodeTtl (3 × SCAN_INTERVAL) + FLEET_STALE_LIMIT_SECS, refreshed only by a successful probe | monitor | gateway, inventory |
 * | nodes                       | zset    | member score = record expiry (ms); expired members pruned on read | monitor | gateway |
 * | scans                       | hash    | next (scan numbers), completed, completedBy, completedAt; 30 days after the last scan | monitor | gateway |
 * | monitor-lease               | hash    | monitorId, since: the scanning monitor (its heartbeat); PX lease, renewed by its holder | monitor | monitor, gateway |
 * | slots:{host:port}           | zset    | member = lease id, score = lease expiry (ms); key PEXPIRE 2 × lease, renewed below 1.5 × lease | gateway | gateway |
 * | circuit:{host:port}         | hash    | failures, openUntil, probeUntil; 24 h after the last write | gateway | gateway |
 * | rr:{rotateKey}              | string  | round-robin counter (INCR); 24 h; rotateKey usually the model | gateway | gateway |
 * | sticky:{model}:{session}    | string  | node id; STICKY_TTL_SECS (the name is AcquireSlotRequest.sticky.key) | gateway | gateway |
 * | queue:{model}               | zset    | waiting tickets in arrival order (score = Redis ms, +1 per tie); PEXPIRE 2 × ticket TTL | gateway | gateway |
 * | queue-ttl:{model}           | zset    | the same tickets, score = ticket expiry (ms): unrenewed tickets (a dead replica's) are pruned | gateway | gateway |
 * | replica-inflight            | hash    | field = gateway replica id, value = JSON {node: count} of attempts it placed without a lease; PEXPIRE 2 × report TTL | gateway | gateway |
 * | replica-inflight-ttl        | zset    | the same replica ids, score = report expiry (ms): a dead replica's report is pruned | gateway | gateway |
 * | load:{host:port}            | string  | JSON EngineLoadReading; 3 × LOAD_POLL_MS, refreshed every poll | monitor | gateway, inventory |
 * | response:{responseId}       | string  | node id that made a Responses API response; RESPONSES_TTL_SECS | gateway | gateway |
 * | channel fleet-changed       | pub/sub | monitor publishes after a scan changed the fleet; gateways when a circuit opens or a probe closes it | monitor, gateway | gateway |
 * | channel slot-freed          | pub/sub | gateway publishes the node id when leases are released (once per node per SLOT_OPS call) | gateway | gateway (queue) |
 */
export interface RedisKeys {
  node(id: NodeId): string;
  nodeIndex(): string;
  scans(): string;
  monitorLease(): string;
  slots(id: NodeId): string;
  circuit(id: NodeId): string;
  roundRobin(model: string): string;
  /** For AcquireSlotRequest.sticky.key (the gateway's `${model}:${sessionId}`). */
  sticky(name: string): string;
  queue(model: string): string;
  queueExpiry(model: string): string;
  replicaInflight(): string;
  replicaInflightExpiry(): string;
  engineLoad(id: NodeId): string;
  responseOwner(responseId: string): string;
  fleetChangedChannel(): string;
  slotFreedChannel(): string;
}

export function redisKeys(prefix: string): RedisKeys {
  return {
    node: (id) => `${prefix}node:${id}`,
    nodeIndex: () => `${prefix}nodes`,
    scans: () => `${prefix}scans`,
    monitorLease: () => `${prefix}monitor-lease`,
    slots: (id) => `${prefix}slots:${id}`,
    circuit: (id) => `${prefix}circuit:${id}`,
    roundRobin: (model) => `${prefix}rr:${model}`,
    sticky: (name) => `${prefix}sticky:${name}`,
    queue: (model) => `${prefix}queue:${model}`,
    queueExpiry: (model) => `${prefix}queue-ttl:${model}`,
    replicaInflight: () => `${prefix}replica-inflight`,
    replicaInflightExpiry: () => `${prefix}replica-inflight-ttl`,
    engineLoad: (id) => `${prefix}load:${id}`,
    responseOwner: (responseId) => `${prefix}response:${responseId}`,
    fleetChangedChannel: () => `${prefix}fleet-changed`,
    slotFreedChannel: () => `${prefix}slot-freed`,
  };
}

/** TTLs of keys that are not tied to a config value. */
export const KEY_TTL_MS = {
  circuit: 24 * 3600 * 1000,
  roundRobin: 24 * 3600 * 1000,
  /** Longer than any record lives (NODE_TTL_SECS + FLEET_STALE_LIMIT_SECS), so scan numbers never restart under a record. */
  scans: 30 * 24 * 3600 * 1000,
} as const;
