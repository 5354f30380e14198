/**
 * The OpenTelemetry side of tracing, loaded only when OTEL_EXPORTER_OTLP_ENDPOINT is set
 * (tracing.ts): spans are batched and exported as OTLP/HTTP JSON to <endpoint>/v1/traces.
 * A request is a SERVER span, each upstream attempt a CLIENT span under it, with the GenAI
 * semantic-convention attributes (gen_ai.operation.name, gen_ai.request.model,
 * gen_ai.response.model, gen_ai.usage.*, gen_ai.response.finish_reasons). A client's valid
 * W3C `traceparent` makes the request span its child; each attempt's own traceparent goes to
 * the node. The global OpenTelemetry API state is left alone: the gateway's tracer is its own
 * object, so a host application's tracing is not changed by it.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { parseTraceParent } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Logger, NodeId } from '@ai-lb/shared';
import type { Exchange } from '../http/exchange.ts';
import type { RequestSummary } from './request-summary.ts';
import type { RequestTrace, RequestTracer } from './tracing.ts';

export interface OtelTracerOptions {
  /** The collector's base URL (OTEL_EXPORTER_OTLP_ENDPOINT). */
  endpoint: string;
  serviceName: string;
  log: Logger;
}

/** How long a stopping gateway waits for its last spans to be exported. */
const SHUTDOWN_EXPORT_MS = 1000;

/** gen_ai.operation.name per surface, where the conventions name one. */
const OPERATION: Readonly<Record<string, string>> = { chat: 'chat', embeddings: 'embeddings', completions: 'text_completion' };

export function createOtelTracer(options: OtelTracerOptions): RequestTracer {
  const exporter = new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/+$/, '')}/v1/traces` });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('ai-lb-gateway');
  options.log.info({ endpoint: options.endpoint }, 'tracing: OTLP/HTTP export on');
  return {
    startRequest: (exchange) => new OtelRequestTrace(tracer, exchange),
    async shutdown() {
      // The exporter retries an unreachable collector for up to its timeout (10 s): a stop
      // must not wait for that. What is not exported within the bound is dropped.
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), SHUTDOWN_EXPORT_MS);
        timer.unref();
      });
      const done = provider.shutdown().then(
        () => 'done' as const,
        (error: unknown) => void options.log.warn({ err: error }, 'tracing: export at shutdown failed'),
      );
      if ((await Promise.race([done, bound])) === 'timeout')
        options.log.warn({}, 'tracing: spans not exported within 1 s of stopping were dropped');
      clearTimeout(timer);
    },
  };
}

class OtelRequestTrace implements RequestTrace {
  private readonly span: Span;
  private readonly operation: string;
  private attempt: Span | null = null;

  constructor(
    private readonly tracer: Tracer,
    private readonly exchange: Exchange,
  ) {
    const header = exchange.req.headers.traceparent;
    const parent = typeof header === 'string' ? parseTraceParent(header) : null;
    const context = parent === null ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, { ...parent, isRemote: true });
    this.operation = OPERATION[exchange.surface ?? ''] ?? exchange.surface ?? 'unknown';
    this.span = tracer.startSpan(
      `${exchange.req.method ?? 'POST'} ${exchange.path.slice(0, 200)}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': exchange.req.method ?? 'POST',
          'url.path': exchange.path.slice(0, 200),
          'gen_ai.operation.name': this.operation,
          'ai_lb.request_id': exchange.requestId,
        },
      },
      context,
    );
  }

  startAttempt(node: NodeId, attemptNumber: number): string {
    this.endAttempt();
    const at = node.lastIndexOf(':');
    const span = this.tracer.startSpan(
      `attempt ${attemptNumber} ${node}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'server.address': node.slice(0, at).replace(/^\[|\]$/g, ''),
          'server.port': Number(node.slice(at + 1)),
          'gen_ai.operation.name': this.operation,
          'gen_ai.request.model': this.exchange.model ?? undefined,
          'ai_lb.node': node,
          'ai_lb.attempt': attemptNumber,
        },
      },
      trace.setSpan(ROOT_CONTEXT, this.span),
    );
    this.attempt = span;
    const { traceId, spanId, traceFlags } = span.spanContext();
    return `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}`;
  }

  attemptFailed(reason: string, message: string): void {
    this.attempt?.setAttribute('error.type', reason);
    this.attempt?.setStatus({ code: SpanStatusCode.ERROR, message: message.slice(0, 500) });
  }

  endAttempt(): void {
    this.attempt?.end();
    this.attempt = null;
  }

  end(summary: RequestSummary): void {
    this.endAttempt();
    const attributes: Attributes = {
      'http.response.status_code': summary.status,
      'ai_lb.outcome': summary.outcome,
      'ai_lb.attempts': summary.attempts,
      'ai_lb.stream': summary.stream,
    };
    if (summary.modelRequested !== null) attributes['gen_ai.request.model'] = summary.modelRequested;
    if (summary.model !== null) attributes['gen_ai.response.model'] = summary.model;
    if (summary.node !== null) attributes['ai_lb.node'] = summary.node;
    if (summary.promptTokens !== null) attributes['gen_ai.usage.input_tokens'] = summary.promptTokens;
    if (summary.completionTokens !== null && !summary.tokensEstimated) attributes['gen_ai.usage.output_tokens'] = summary.completionTokens;
    if (summary.ttftMs !== null) attributes['ai_lb.time_to_first_token_ms'] = summary.ttftMs;
    if (summary.queueWaitMs !== null) attributes['ai_lb.queue_wait_ms'] = summary.queueWaitMs;
    const finishReason = this.exchange.finishReason;
    if (finishReason !== null) attributes['gen_ai.response.finish_reasons'] = [finishReason];
    this.span.setAttributes(attributes);
    // The GenAI conventions name a span "{operation} {model}"; the model is known only now.
    if (summary.model !== null) this.span.updateName(`${this.operation} ${summary.model}`);
    if (summary.status >= 500 || summary.outcome === 'stream_error') {
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: `${summary.outcome}: HTTP ${summary.status}` });
    }
    this.span.end();
  }
}
