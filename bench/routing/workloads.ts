/**
 * The routing benchmark's workloads: a simulated fleet (fake engines, each its own process)
 * and a fixed seeded trace replayed at a fixed arrival rate. Each one isolates what one
 * engine signal is for; `scale` shortens the trace (--quick), never its rate.
 */
import type { FakeEngineOptions } from '@ai-lb/testkit';
import { randomText, seededRandom } from './seeded-random.ts';

export interface Turn {
  /** The system prompt, on the first turn of a conversation. */
  system?: string;
  user: string;
  maxTokens: number;
}

/** One client conversation: turns sent one after another, each with the replies so far. */
export interface Session {
  startMs: number;
  model: string;
  turns: Turn[];
  /** Pause between a reply and the next turn. */
  thinkMs: number;
}

export interface OutsideLoad {
  /** Index into `engines`: the node a client outside ai-lb keeps busy. */
  engine: number;
  concurrency: number;
  promptTokens: number;
  maxTokens: number;
}

export interface Workload {
  name: string;
  /** What it shows, for the report. */
  about: string;
  engines: FakeEngineOptions[];
  /** ai-lb's cap on each of this workload's nodes (MAXCONN_MAP), when it needs one. */
  maxconn?: number;
  /** Names no other workload uses: one gateway serves every workload's fleet, told apart by model. */
  models: string[];
  outside?: OutsideLoad;
  trace(scale: number): Session[];
}

const VLLM = { kind: 'vllm', slots: 4, modelLoadMs: 0, kvCacheTokens: 40_000 } as const;

/**
 * Multi-turn chats sharing long system prompts: every turn repeats the conversation so
 * far, so the node that served the previous turn has most of the prompt in its prefix
 * cache. Cache affinity should win TTFT here.
 */
const multiTurn: Workload = {
  name: 'multi-turn',
  about: 'conversations of 8 turns on a 4 000-token document each, 4 shared 1 500-token system prompts; 3 vLLM-like nodes',
  engines: [0, 1, 2].map(() => ({ ...VLLM, models: ['multi-turn-8b'], decodeTokensPerSec: 60, prefillTokensPerSec: 6_000 })),
  models: ['multi-turn-8b'],
  trace(scale) {
    const random = seededRandom(13);
    const systems = [0, 1, 2, 3].map(() => randomText(random, 1500));
    const conversations = Math.max(2, Math.round(12 * scale));
    return Array.from({ length: conversations }, (_, i) => ({
      startMs: Math.round(i * 333),
      model: 'multi-turn-8b',
      thinkMs: 100,
      turns: [
        { system: systems[i % systems.length], user: randomText(random, 4000), maxTokens: 16 },
        ...Array.from({ length: 7 }, () => ({ user: randomText(random, 100), maxTokens: 16 })),
      ],
    }));
  },
};

/**
 * Two models on Ollama-like nodes that hold one model each: a request for the model a
 * node does not hold waits for a swap. Warm-first should trigger no load it could avoid.
 */
const twoModels: Workload = {
  name: 'two-models',
  about: 'models A and B, half the requests each; 3 Ollama-like nodes holding 1 model (A, B, A), 2 slots, 1.5 s per model load',
  engines: [['model-a'], ['model-b'], ['model-a']].map((loaded) => ({
    kind: 'ollama',
    models: ['model-a', 'model-b'],
    loaded,
    maxLoadedModels: 1,
    modelLoadMs: 1500,
    slots: 2,
    decodeTokensPerSec: 60,
    prefillTokensPerSec: 4_000,
    kvCacheTokens: 16_000,
  })),
  // Ollama does not report its parallelism: the cap is what lets warm-first see a full node.
  maxconn: 2,
  models: ['model-a', 'model-b'],
  trace(scale) {
    const random = seededRandom(21);
    const requests = Math.max(4, Math.round(16 * scale));
    return Array.from({ length: requests }, (_, i) => ({
      startMs: Math.round(i * 250),
      model: random() < 0.5 ? 'model-a' : 'model-b',
      thinkMs: 0,
      turns: [{ user: randomText(random, 200), maxTokens: 24 }],
    }));
  },
};

/**
 * One node kept busy by a client that bypasses ai-lb: ai-lb's own counts call it idle,
 * its engine says it queues. Engine-aware LEAST_LOADED should cut the tail.
 */
const outsideLoad: Workload = {
  name: 'outside-load',
  about: 'an outside client keeps 10 requests on node 1 of 3 vLLM-like nodes (4 slots): 4 running, 6 queued',
  engines: [0, 1, 2].map(() => ({ ...VLLM, models: ['outside-load-8b'], decodeTokensPerSec: 50, prefillTokensPerSec: 8_000 })),
  models: ['outside-load-8b'],
  outside: { engine: 0, concurrency: 10, promptTokens: 300, maxTokens: 60 },
  trace(scale) {
    const random = seededRandom(34);
    const requests = Math.max(4, Math.round(20 * scale));
    return Array.from({ length: requests }, (_, i) => ({
      startMs: Math.round(i * 200),
      model: 'outside-load-8b',
      thinkMs: 0,
      turns: [{ user: randomText(random, 300), maxTokens: 20 }],
    }));
  },
};

/** One fast node and two slow ones: spreading evenly overloads the slow ones. */
const heterogeneous: Workload = {
  name: 'heterogeneous',
  about: '1 fast node (150 tok/s) and 2 slow ones (30 tok/s), 4 slots each',
  engines: [150, 30, 30].map((decode) => ({
    ...VLLM,
    models: ['heterogeneous-8b'],
    decodeTokensPerSec: decode,
    prefillTokensPerSec: decode * 100,
  })),
  models: ['heterogeneous-8b'],
  trace(scale) {
    const random = seededRandom(55);
    const requests = Math.max(4, Math.round(20 * scale));
    return Array.from({ length: requests }, (_, i) => ({
      startMs: Math.round(i * 200),
      model: 'heterogeneous-8b',
      thinkMs: 0,
      turns: [{ user: randomText(random, 500), maxTokens: 24 }],
    }));
  },
};

export const WORKLOADS: readonly Workload[] = [multiTurn, twoModels, outsideLoad, heterogeneous];
