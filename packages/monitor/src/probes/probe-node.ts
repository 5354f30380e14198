/**
 * Probes one target: is it an LLM server, which kind, what does it serve?
 *
 *   TCP connect     -> refused, timeout, …: failed (most scanned ports end here, cheaply)
 *   GET /v1/models  -> not answering at all: failed (timeout, reset, oversized, …)
 *                   -> carries the gateway mark: an ai-lb gateway, skipped (no routing loops)
 *                   -> a model list: a node; kind probes (hinted by owned_by) tell the kind,
 *                      loaded models, detected capacity and server load
 *                   -> anything else: still a node if Ollama's GET /api/tags answers
 *
 * The whole of it runs under one deadline per target (TARGET_DEADLINE_PROBE_TIMEOUTS ×
 * PROBE_TIMEOUT_MS): a server that answers /v1/models but lets every kind probe run into
 * its timeout would otherwise cost five timeouts, and hold up the scan of every target.
 * At the deadline the node is recorded with what is known (kind `openai` if none was
 * identified yet) and the cut is a `timeout` warning.
 */
import { setMaxListeners } from 'node:events';
import { cleanModelIds, GATEWAY_MARK_HEADER, type ApiSurface, type ModelIdDropReason, type ServerKind } from '@ai-lb/shared';
import { ProbeError } from './probe-error.ts';
import { OPENAI_MODELS_PATH, readOpenAiModels, type OpenAiModelList } from './openai.ts';
import { probeOllama } from './ollama.ts';
import { probeLlamaCpp } from './llamacpp.ts';
import { probeLmStudio } from './lmstudio.ts';
import { probeSglang } from './sglang.ts';
import { probeVllm } from './vllm.ts';
import { forgetSurfaces, learnSurfaces } from './surfaces.ts';
import type { KindFacts, KindProbe, ProbeContext } from './probe-context.ts';
import type { ProbeClient, ProbeResponse } from './probe-client.ts';
import type { ScanTarget } from '../scan/targets.ts';

/** Everything the monitor learned about a node, before capacity is resolved. */
export interface NodeFacts {
  kind: ServerKind;
  models: string[];
  loadedModels: string[];
  detectedMaxconn: number | null;
  serverLoad: { running: number; waiting: number } | null;
  latencyMs: number | null;
  /** Listed ids left out (invalid, or over the per-node cap), per reason; models and loaded models together. */
  droppedModelIds: Partial<Record<ModelIdDropReason, number>>;
  /** The API surfaces it serves (surfaces.ts). */
  surfaces?: readonly ApiSurface[];
}

export type ProbeOutcome =
  | { target: ScanTarget; status: 'node'; facts: NodeFacts; warnings: ProbeError[] }
  | { target: ScanTarget; status: 'gateway'; warnings: ProbeError[] }
  | { target: ScanTarget; status: 'failed'; error: ProbeError; warnings: ProbeError[] };

type DetectedKind = Exclude<ServerKind, 'openai'>;

/** Tried in this order unless owned_by hints otherwise: small JSON answers first, /metrics last. */
const KIND_PROBES: Record<DetectedKind, KindProbe> = {
  lmstudio: probeLmStudio,
  ollama: probeOllama,
  llamacpp: probeLlamaCpp,
  sglang: probeSglang,
  vllm: probeVllm,
};

/** What servers put in /v1/models `owned_by`. A hint only reorders the probes: a wrong one costs one GET. */
const OWNED_BY_HINTS: Record<string, DetectedKind> = {
  llamacpp: 'llamacpp',
  vllm: 'vllm',
  sglang: 'sglang',
  library: 'ollama',
  organization_owner: 'lmstudio',
};

/** The deadline of one target, in PROBE_TIMEOUT_MS: /v1/models plus the kind probes that fit. */
export const TARGET_DEADLINE_PROBE_TIMEOUTS = 2;

export async function probeTarget(
  client: ProbeClient,
  target: ScanTarget,
  deadlineMs = TARGET_DEADLINE_PROBE_TIMEOUTS * client.timeoutMs,
): Promise<ProbeOutcome> {
  const warnings: ProbeError[] = [];
  const deadline = new AbortController();
  // The surface probe asks a dozen routes at once under this one deadline: more listeners
  // than node's leak warning assumes, all removed when each request ends.
  setMaxListeners(64, deadline.signal);
  const timer = setTimeout(() => deadline.abort(), deadlineMs);
  const context: ProbeContext = { client, target, deadline: deadline.signal, warn: (error) => warnings.push(error) };
  try {
    return await probeWithin(context, warnings);
  } finally {
    clearTimeout(timer);
  }
}

async function probeWithin(context: ProbeContext, warnings: ProbeError[]): Promise<ProbeOutcome> {
  const { client, target } = context;
  let response: ProbeResponse;
  try {
    await client.open(target);
    response = await client.get(target, OPENAI_MODELS_PATH, context.deadline);
  } catch (error) {
    forgetSurfaces(client, target.node);
    return { target, status: 'failed', error: asProbeError(error), warnings };
  }
  if (response.headers[GATEWAY_MARK_HEADER] !== undefined) return { target, status: 'gateway', warnings };

  let list: OpenAiModelList;
  try {
    list = readOpenAiModels(response);
  } catch (error) {
    const ollama = await probeOllama(context);
    if (ollama) return { target, status: 'node', facts: await withSurfaces(context, mergeFacts(null, ollama, null, context)), warnings };
    return { target, status: 'failed', error: asProbeError(error), warnings };
  }
  const kindFacts = await identifyKind(context, list.ownedBy);
  return { target, status: 'node', facts: await withSurfaces(context, mergeFacts(list, kindFacts, response.latencyMs, context)), warnings };
}

async function withSurfaces(context: ProbeContext, facts: NodeFacts): Promise<NodeFacts> {
  return { ...facts, surfaces: await learnSurfaces(context, facts) };
}

async function identifyKind(context: ProbeContext, ownedBy: string[]): Promise<KindFacts> {
  const hinted = ownedBy.map((owner) => OWNED_BY_HINTS[owner]).filter((kind) => kind !== undefined);
  const order = [...new Set([...hinted, ...(Object.keys(KIND_PROBES) as DetectedKind[])])];
  for (const kind of order) {
    // Past the deadline every further GET would fail at once: the kind stays unknown.
    if (context.deadline.aborted) break;
    const facts = await KIND_PROBES[kind](context);
    if (facts) return facts;
  }
  return { kind: 'openai' };
}

/** Whatever listing the ids came from (/v1/models, /api/tags, /api/ps, /api/v0/models), they are cleaned here. */
function mergeFacts(list: OpenAiModelList | null, facts: KindFacts, latencyMs: number | null, context: ProbeContext): NodeFacts {
  const models = cleanModelIds(facts.models ?? list?.models ?? []);
  const loaded = cleanModelIds(facts.loadedModels ?? []);
  const dropped: Partial<Record<ModelIdDropReason, number>> = { ...models.dropped };
  for (const [reason, count] of Object.entries(loaded.dropped) as [ModelIdDropReason, number][]) {
    dropped[reason] = (dropped[reason] ?? 0) + count;
  }
  const summary = Object.entries(dropped).map(([reason, count]) => `${count} ${reason}`);
  if (summary.length > 0) context.warn(new ProbeError('models_dropped', `model ids left out: ${summary.join(', ')}`));
  return {
    kind: facts.kind,
    models: models.ids,
    loadedModels: loaded.ids,
    detectedMaxconn: facts.detectedMaxconn ?? null,
    serverLoad: facts.serverLoad ?? null,
    latencyMs: roundMs(latencyMs ?? facts.latencyMs ?? null),
    droppedModelIds: dropped,
  };
}

function roundMs(ms: number | null): number | null {
  return ms === null ? null : Math.round(ms * 10) / 10;
}

function asProbeError(error: unknown): ProbeError {
  if (error instanceof ProbeError) return error;
  throw error; // a bug, not a probe result: let it surface
}
