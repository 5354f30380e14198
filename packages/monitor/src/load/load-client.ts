/**
 * The load poller's HTTP client: one bounded GET (the whole answer within timeoutMs, the
 * body under a size cap), like the probe client, but keeping one connection per node
 * alive — the same few nodes are asked every LOAD_POLL_MS, where the scan touches
 * thousands of addresses once.
 */
import { Agent, request } from 'undici';
import { normalizeNodeId, originOf, type NodeId } from '@ai-lb/shared';
import { readProbeResponse, type ProbeResponse } from '../probes/probe-client.ts';
import { toProbeError } from '../probes/probe-error.ts';
import type { ScanTarget } from '../scan/targets.ts';
import type { LoadGet } from './load-poller.ts';

/** A vLLM page with histograms of several models is a few hundred KiB. */
export const MAX_LOAD_BODY_BYTES = 2 * 1024 * 1024;

export interface LoadClient {
  /** A GET bound to one node, for its kind's poller. */
  forNode(target: ScanTarget): LoadGet;
  /** Ends every connection at once, cutting off a poll still waiting on a slow node. */
  close(): Promise<void>;
}

export function createLoadClient(options: { timeoutMs: number; apiKeys?: ReadonlyMap<NodeId, string> }): LoadClient {
  const { timeoutMs } = options;
  const apiKeys = new Map([...(options.apiKeys ?? [])].map(([node, key]) => [normalizeNodeId(node), key]));
  const agent = new Agent({ connections: 1, connect: { timeout: timeoutMs }, keepAliveTimeout: 10_000 });

  async function get(target: ScanTarget, path: string): Promise<ProbeResponse> {
    const started = performance.now();
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const headers: Record<string, string> = { accept: 'text/plain, application/json;q=0.9', 'user-agent': 'ai-lb-monitor' };
      const key = apiKeys.get(target.node);
      if (key !== undefined) headers.authorization = `Bearer ${key}`;
      const response = await request(`${originOf(target)}${path}`, {
        method: 'GET',
        dispatcher: agent,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        headers,
      });
      return await readProbeResponse(response, MAX_LOAD_BODY_BYTES, path, started);
    } catch (error) {
      throw toProbeError(error, signal.aborted);
    }
  }

  return { forNode: (target) => (path) => get(target, path), close: () => agent.destroy() };
}
