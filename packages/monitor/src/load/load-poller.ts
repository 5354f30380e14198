/**
 * What every per-kind load poller receives and returns. A poller asks its node's cheap
 * load endpoint and normalises the answer; it throws a ProbeError when the endpoint is
 * missing, broken or says something else, and the poll loop then records no reading.
 */
import type { EngineLoadReading } from '@ai-lb/shared';
import type { ProbeResponse } from '../probes/probe-client.ts';

/** One bounded GET on the node being polled (timeout, size cap, node key). */
export type LoadGet = (path: string) => Promise<ProbeResponse>;

/** A reading before the loop stamps node and time on it. */
export type EngineLoadFacts = Omit<EngineLoadReading, 'node' | 'at'>;

export type LoadPoller = (get: LoadGet) => Promise<EngineLoadFacts>;

export const NO_QUEUE = { running: null, waiting: null, kvCacheUsage: null } as const;
