/**
 * Traces, when OTEL_EXPORTER_OTLP_ENDPOINT is set: what the pipeline tells a request's
 * trace, and the loader. The OpenTelemetry SDK is imported only when tracing is on
 * (otel-tracer.ts), so a gateway without an endpoint loads none of it and a request's trace
 * is one `null` check per step.
 */
import type { Logger, NodeId } from '@ai-lb/shared';
import type { Exchange } from '../http/exchange.ts';
import type { RequestSummary } from './request-summary.ts';

/** One routed request's trace: a span for the request, a child span per upstream attempt. */
export interface RequestTrace {
  /**
   * An upstream attempt begins (its child span starts). Returns the W3C `traceparent` the
   * upstream gets, naming that span as the parent of whatever the node traces.
   */
  startAttempt(node: NodeId, attemptNumber: number): string;
  /** The current attempt failed (classify-failure's reason) before or while answering. */
  attemptFailed(reason: string, message: string): void;
  /** The current attempt is over, however it went. */
  endAttempt(): void;
  /** The request ended: its span takes the summary's attributes (GenAI conventions) and ends. */
  end(summary: RequestSummary): void;
}

export interface RequestTracer {
  /** Starts the request's span, as a child of the client's `traceparent` when it sent a valid one. */
  startRequest(exchange: Exchange): RequestTrace;
  /** Exports what is buffered and stops (gateway shutdown). */
  shutdown(): Promise<void>;
}

export interface TracingConfig {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL; spans go to <endpoint>/v1/traces as OTLP/HTTP JSON. */
  otelEndpoint: string | undefined;
  otelServiceName: string;
}

/** The tracer when an endpoint is configured, else null (and nothing of OpenTelemetry is loaded). */
export async function createTracer(config: TracingConfig, log: Logger): Promise<RequestTracer | null> {
  if (config.otelEndpoint === undefined) return null;
  const { createOtelTracer } = await import('./otel-tracer.ts');
  return createOtelTracer({ endpoint: config.otelEndpoint, serviceName: config.otelServiceName, log });
}

/** The first finish_reason of a parsed answer or stream chunk (OpenAI shape), or null. */
export function finishReasonOf(record: Record<string, unknown> | undefined): string | null {
  const choices = record?.choices;
  if (!Array.isArray(choices)) return null;
  for (const choice of choices) {
    const reason = (choice as { finish_reason?: unknown } | null)?.finish_reason;
    if (typeof reason === 'string') return reason.slice(0, 64);
  }
  return null;
}

const FINISH_REASON_KEY = Buffer.from('"finish_reason"');

/**
 * The finish reason of a whole JSON answer without parsing it: the string after its last
 * `"finish_reason"` key. Only traced requests pay for the search.
 */
export function finishReasonOfAnswer(body: Buffer): string | null {
  const key = body.lastIndexOf(FINISH_REASON_KEY);
  if (key === -1) return null;
  const match = /^\s*:\s*"([^"\\]{1,64})"/.exec(body.toString('utf8', key + FINISH_REASON_KEY.length, key + FINISH_REASON_KEY.length + 80));
  return match === null ? null : match[1];
}
