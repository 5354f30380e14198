/**
 * A routing candidate as engine-aware ordering sees it: ai-lb's own in-flight count, the
 * engine's fresh load reading (if any), whether the engine has the model loaded, and its
 * NODE_PRIORITY. Built once per request from the fleet cache; everything that orders
 * candidates from here on is pure (engine-load-ranking.ts, cache-affinity.ts).
 */
import { DEFAULT_NODE_PRIORITY, type EngineLoadReading, type NodeId, type NodeState } from '@ai-lb/shared';

export interface EngineAwareCandidate {
  node: NodeId;
  /** ai-lb's cap; 0 = none. */
  maxconn: number;
  /** Requests the engine runs at once when known (its cap, else what it reported), else null. */
  slots: number | null;
  /** ai-lb's fleet-wide in-flight count on the node. */
  inflight: number;
  /** A reading no older than 3 poll intervals, or null. */
  engine: EngineLoadReading | null;
  /** The engine has the requested model loaded; null when it does not say (vLLM, SGLang: always). */
  warm: boolean | null;
  /** NODE_PRIORITY, lower first. */
  priority: number;
}

export interface CandidateInput {
  node: NodeState;
  /** The concrete model id this node would serve the request with (after MODEL_ALIASES). */
  model: string;
  inflight: number;
  reading: EngineLoadReading | undefined;
  priorities: ReadonlyMap<string, number>;
  now: number;
  /** engineLoadMaxAgeMs(LOAD_POLL_MS): older readings are ignored. */
  maxReadingAgeMs: number;
}

export function toEngineAwareCandidate(input: CandidateInput): EngineAwareCandidate {
  const { node, reading } = input;
  const engine = reading !== undefined && input.now - reading.at <= input.maxReadingAgeMs ? reading : null;
  return {
    node: node.node,
    maxconn: node.maxconn,
    slots: node.maxconn > 0 ? node.maxconn : node.detectedMaxconn,
    inflight: input.inflight,
    engine,
    warm: engine?.loadedModels ? engine.loadedModels.includes(input.model) : null,
    priority: nodePriority(input.priorities, node.node),
  };
}

/** NODE_PRIORITY of a node; config keys are lowercased node ids, like the monitor's. */
export function nodePriority(priorities: ReadonlyMap<string, number>, node: NodeId): number {
  return priorities.get(node.toLowerCase()) ?? DEFAULT_NODE_PRIORITY;
}

/**
 * Requests on the node that ai-lb did not send: the engine's running + waiting beyond
 * ai-lb's own in-flight count, never below 0 (the reading may predate ai-lb's last sends).
 */
export function outsideLoad(c: EngineAwareCandidate): number {
  if (c.engine === null || (c.engine.running === null && c.engine.waiting === null)) return 0;
  return Math.max(0, (c.engine.running ?? 0) + (c.engine.waiting ?? 0) - c.inflight);
}

/** ai-lb's in-flight plus the outside load: the requests ahead of a new one. */
export function totalLoad(c: EngineAwareCandidate): number {
  return c.inflight + outsideLoad(c);
}

/**
 * Load relative to capacity: over ai-lb's cap when there is one, else the raw count —
 * the same scale the store's least_loaded order uses, so the two never disagree on an
 * engine without a reading.
 */
export function loadRatio(c: EngineAwareCandidate): number {
  return c.maxconn > 0 ? totalLoad(c) / c.maxconn : totalLoad(c);
}

/**
 * Cannot start a new request at once: every known slot busy, or the engine already
 * queues. A node without a cap, a slot count or a queue signal is never full (nothing
 * says so): give Ollama and LM Studio a MAXCONN_MAP entry for warm-first to spill.
 */
export function isFull(c: EngineAwareCandidate): boolean {
  if (c.slots !== null && c.slots > 0 && totalLoad(c) >= c.slots) return true;
  return (c.engine?.waiting ?? 0) > 0;
}

/**
 * What the store's least_loaded step needs of a candidate beside its live in-flight count
 * (SlotCandidate hints): the outside load, and the requests the node runs at once — its
 * slot count when known, else, while the engine queues, what it runs now (an engine that
 * queues is full at what it runs), else 0 (unknown: never busy by this measure).
 */
export function storeHints(c: EngineAwareCandidate): { extraLoad: number; slots: number } {
  const waiting = c.engine?.waiting ?? 0;
  const slots = c.slots !== null && c.slots > 0 ? c.slots : waiting > 0 ? Math.max(1, c.engine?.running ?? 0) : 0;
  return { extraLoad: Math.round(outsideLoad(c)), slots: Math.round(slots) };
}
