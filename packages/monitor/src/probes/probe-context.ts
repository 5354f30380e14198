/**
 * What every probe of one server kind receives and returns. A kind probe answers "is this
 * target my kind, and what does it tell about itself?": null when it is not (the
 * endpoint is missing or says something else), facts when it is.
 */
import type { ServerKind } from '@ai-lb/shared';
import { ProbeError } from './probe-error.ts';
import type { ProbeClient, ProbeResponse } from './probe-client.ts';
import type { ScanTarget } from '../scan/targets.ts';

export interface ProbeContext {
  client: ProbeClient;
  target: ScanTarget;
  /** Aborts at the target's deadline: every GET of every kind probe shares it. */
  deadline: AbortSignal;
  /** Records a failure that does not sink the node (a secondary endpoint broke); it is counted. */
  warn(error: ProbeError): void;
}

/** What a kind probe learned; fields left out keep what /v1/models said. */
export interface KindFacts {
  kind: ServerKind;
  models?: string[];
  loadedModels?: string[];
  detectedMaxconn?: number | null;
  serverLoad?: { running: number; waiting: number } | null;
  /** Round trip of this kind's own model listing, when it replaced /v1/models. */
  latencyMs?: number;
}

export type KindProbe = (context: ProbeContext) => Promise<KindFacts | null>;

/** The body of a 200 answer, parsed as JSON; anything else is a ProbeError. */
export function jsonBody(response: ProbeResponse, path: string): unknown {
  okBody(response, path);
  try {
    return JSON.parse(response.body) as unknown;
  } catch (error) {
    throw new ProbeError('invalid_json', `${path}: answered 200 with a body that is not JSON`, { cause: error });
  }
}

export function okBody(response: ProbeResponse, path: string): string {
  if (response.status !== 200) {
    throw new ProbeError('http_status', `${path}: answered HTTP ${response.status}`, { status: response.status });
  }
  return response.body;
}

export function badShape(path: string, expected: string): ProbeError {
  return new ProbeError('bad_shape', `${path}: expected ${expected}`);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A positive integer, or null: servers say 0 or -1 for "unset". */
export function positiveInt(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : null;
}

/**
 * Runs one GET + parse for a kind probe. The answers that mean "not my kind" (a missing
 * endpoint, a page of something else) give null quietly; a transport failure (timeout,
 * reset, oversized body) gives null too but is recorded, since it hides what the node is.
 */
export async function tryGet<T>(context: ProbeContext, path: string, parse: (response: ProbeResponse) => T): Promise<T | null> {
  try {
    return parse(await context.client.get(context.target, path, context.deadline));
  } catch (error) {
    if (!(error instanceof ProbeError)) throw error;
    if (!['http_status', 'invalid_json', 'bad_shape'].includes(error.reason)) context.warn(error);
    return null;
  }
}
