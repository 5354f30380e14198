/**
 * One node's load, by its kind: the table below is the only place that knows which
 * endpoint each kind of server exposes (a new kind is one file and one line). A kind
 * without a load endpoint (a generic OpenAI server) has no reading; routing then uses
 * ai-lb's own in-flight count alone.
 */
import type { Clock, EngineLoadReading, NodeId, ServerKind } from '@ai-lb/shared';
import type { LoadGet, LoadPoller } from './load-poller.ts';
import { pollLlamaCppLoad } from './llamacpp-load.ts';
import { pollLmStudioLoad } from './lmstudio-load.ts';
import { pollOllamaLoad } from './ollama-load.ts';
import { pollSglangLoad } from './sglang-load.ts';
import { pollVllmLoad } from './vllm-load.ts';
import { plausibleFacts } from './plausible-reading.ts';

export const LOAD_POLLERS: Record<ServerKind, LoadPoller | null> = {
  vllm: pollVllmLoad,
  sglang: pollSglangLoad,
  llamacpp: pollLlamaCppLoad,
  ollama: pollOllamaLoad,
  lmstudio: pollLmStudioLoad,
  openai: null,
};

export function hasLoadPoller(kind: ServerKind): boolean {
  return LOAD_POLLERS[kind] !== null;
}

/**
 * The node's normalised reading, stamped when its answer arrived; throws a ProbeError
 * when it has none this time.
 */
export async function pollNodeLoad(node: { node: NodeId; kind: ServerKind }, get: LoadGet, clock: Clock): Promise<EngineLoadReading> {
  const poller = LOAD_POLLERS[node.kind];
  if (poller === null) throw new TypeError(`pollNodeLoad: no load endpoint for kind ${node.kind}`);
  const facts = plausibleFacts(await poller(get), node.node);
  return { node: node.node, ...facts, at: clock() };
}
