import type { ApiSurface } from './surfaces.ts';

/** What kind of server a node is, as identified by the monitor's probes. */
export type ServerKind = 'openai' | 'ollama' | 'llamacpp' | 'vllm' | 'lmstudio' | 'sglang';

/** Where a node's concurrency cap came from: MAXCONN_MAP > detected from the server > DEFAULT_MAXCONN. */
export type CapacitySource = 'map' | 'detected' | 'default';

/** A node is identified by "host:port" (IPv6 hosts in brackets: "[::1]:8080"). */
export type NodeId = string;

/** One LLM server as the monitor last saw it. Written by the monitor, read by the gateway. */
export interface NodeState {
  node: NodeId;
  host: string;
  port: number;
  kind: ServerKind;
  /** false after a failed probe; the record then expires by TTL unless a later probe succeeds. */
  healthy: boolean;
  /** Model ids the node serves (what /v1/models or /api/tags lists). */
  models: string[];
  /** Models currently loaded in memory, where the server tells (Ollama /api/ps, LM Studio). */
  loadedModels: string[];
  /** Concurrent requests the gateway may put on this node; 0 = no cap. */
  maxconn: number;
  capacitySource: CapacitySource;
  /** What the server itself reported (llama.cpp slots, …), null when it says nothing. */
  detectedMaxconn: number | null;
  /** Round trip of the probe's model listing. */
  latencyMs: number | null;
  /** Epoch ms of the last successful probe. */
  lastSeenMs: number;
  /** Epoch ms of the last probe, successful or not. */
  checkedAtMs: number;
  /** Why the last probe failed; null when healthy. */
  error: string | null;
  /** The server's own queue, where it exposes one (vLLM /metrics). */
  serverLoad: { running: number; waiting: number } | null;
  /**
   * The API surfaces the node serves natively (see surfaces.ts). Absent in records written
   * before the monitor learned surfaces: read it through surfacesOf(), never directly.
   */
  surfaces?: readonly ApiSurface[];
}

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitInfo {
  state: CircuitState;
  /** Consecutive failures counted so far. */
  failures: number;
  /** Epoch ms until which an open circuit rejects requests; 0 when closed. */
  openUntilMs: number;
}

/** Milliseconds since the epoch; injected so time-based logic can be tested. */
export type Clock = () => number;
export const systemClock: Clock = () => Date.now();
