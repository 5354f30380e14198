import { performance } from 'node:perf_hooks';
import type { ApiSurface, Config, NodeId } from '@ai-lb/shared';
import type { Lease, SlotLeases } from '../capacity/slot-leases.ts';
import { classifyError, classifyStatus, type FailureReason } from '../failover/classify-failure.ts';
import { shuttingDown, type Exchange } from '../http/exchange.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { FleetCache } from '../routing/fleet-cache.ts';
import { planAcquire } from '../routing/routing-rules.ts';
import { AttemptError } from './attempt-error.ts';
import { pipeStream } from './pipe-stream.ts';
import type { AttemptDeps } from './run-attempt.ts';
import { OPENAI_SSE } from './stream-shapes.ts';
import {
  ContinuationSplice,
  continuationBody,
  isContinuable,
  PartialAnswer,
  RESUMABLE_KINDS,
  resumeTrailer,
  type ResumeSurface,
} from './stream-resume.ts';
import { AttemptAbort, sendUpstream, upstreamHeaders } from './upstream-request.ts';

/** What continuing a broken stream uses. */
export interface ResumeDeps extends AttemptDeps {
  config: Pick<Config, 'maxRetries' | 'requestTimeoutMs' | 'routingStrategy'>;
  fleet: Pick<FleetCache, 'node' | 'recordLatency' | 'healthyNodesFor' | 'surfacesOf' | 'circuit' | 'routingCandidates' | 'modelFor'>;
  leases: Pick<SlotLeases, 'acquire' | 'release'>;
  metrics: AttemptDeps['metrics'] & Pick<GatewayMetrics, 'streamResumes' | 'noteAttemptFailure'>;
  random: () => number;
}

/** How a resume ended: the ai_lb_stream_resumes_total label. */
type ResumeResult = 'completed' | 'failed' | 'no_node' | 'not_resumable' | 'aborted';

/**
 * STREAM_RESUME for one streamed chat or completions request: watches what the client is
 * sent, and when the stream breaks after content went out, continues the answer on other
 * nodes (at most MAX_RETRIES continuations, each started within REQUEST_TIMEOUT_SECS of the
 * break) before it gives up with the stream's error event. The head went out with the first
 * node: the nodes that took over are named in a comment at the end of the stream.
 */
export class StreamResumer {
  readonly partial: PartialAnswer;
  private broken: { node: NodeId; error: unknown } | null = null;
  private continuations = 0;

  constructor(
    private readonly deps: ResumeDeps,
    private readonly request: {
      exchange: Exchange;
      model: string;
      surface: ResumeSurface;
      needs: ApiSurface;
      path: string;
      body: Record<string, unknown>;
    },
  ) {
    this.partial = new PartialAnswer(request.surface);
  }

  /** The attempt's record hook, with the partial answer kept up to date. */
  observer(inner: ((record: Record<string, unknown>) => void) | undefined): (record: Record<string, unknown>) => void {
    const { partial } = this;
    if (inner === undefined) return (record) => partial.observe(record);
    return (record) => {
      partial.observe(record);
      inner(record);
    };
  }

  /** The stream from `node` broke and was left open: `run` continues or ends it. */
  noteBreak(node: NodeId, error: unknown): void {
    this.broken = { node, error };
  }

  get pending(): boolean {
    return this.broken !== null;
  }

  async run(): Promise<void> {
    const broken = this.broken;
    if (broken === null) return;
    this.broken = null;
    const result = await this.continueFrom(broken.node, broken.error);
    this.deps.metrics.streamResumes.inc({ result: result.result });
    if (result.result === 'completed' || result.result === 'aborted') return;
    const why =
      result.result === 'not_resumable' ? this.partial.notResumable : result.result === 'no_node' ? 'no node to continue on' : null;
    this.deps.log.info({ requestId: this.request.exchange.requestId, node: broken.node, result: result.result, why }, 'stream not resumed');
    const message = (result.error as Error | undefined)?.message ?? String(result.error);
    this.request.exchange.endStreamWithError(`upstream stream failed: ${message}`, 'upstream_stream_error');
  }

  private async continueFrom(firstNode: NodeId, firstError: unknown): Promise<{ result: ResumeResult; error?: unknown }> {
    const { deps, request, partial } = this;
    const { exchange, model } = request;
    const excluded = new Set<NodeId>([firstNode]);
    const answered: NodeId[] = [firstNode];
    const deadline = deps.clock() + deps.config.requestTimeoutMs;
    let error = firstError;
    let attempted = false;
    let previous = firstNode;
    while (this.continuations < deps.config.maxRetries && deps.clock() < deadline) {
      if (partial.notResumable !== null) return { result: 'not_resumable', error };
      if (!isContinuable(request.surface, request.body, partial.reportedCompletionTokens())) return { result: 'not_resumable', error };
      const allowed = this.candidates(excluded);
      if (allowed.length === 0) return { result: attempted ? 'failed' : 'no_node', error };
      const placement = await deps.leases.acquire(
        () =>
          planAcquire(deps.fleet.routingCandidates(allowed, model), {
            strategy: deps.config.routingStrategy,
            rotateKey: model,
            previousNode: previous,
            random: deps.random,
          }),
        { group: model, signal: exchange.clientGone, mayQueue: false },
      );
      if (placement.kind === 'rejected') return { result: attempted ? 'failed' : 'no_node', error };
      attempted = true;
      this.continuations++;
      exchange.attempts++;
      const { lease } = placement;
      previous = lease.node;
      excluded.add(lease.node);
      partial.beginSegment();
      const outcome = await this.runContinuation(lease, answered);
      if (outcome.kind === 'completed') {
        exchange.node = lease.node;
        return { result: 'completed' };
      }
      if (outcome.kind === 'aborted') return { result: 'aborted' };
      if (outcome.kind === 'broken') answered.push(lease.node);
      error = outcome.error;
    }
    // Out of continuations (MAX_RETRIES) or of time: given up, whether or not one was tried.
    return { result: 'failed', error };
  }

  /** Healthy nodes of a kind that continues answers, serving the surface, not tried yet, circuit not open. */
  private candidates(excluded: ReadonlySet<NodeId>): NodeId[] {
    const { fleet } = this.deps;
    return fleet
      .healthyNodesFor(this.request.model)
      .filter(
        (n) =>
          RESUMABLE_KINDS.has(n.kind) &&
          !excluded.has(n.node) &&
          fleet.surfacesOf(n.node).has(this.request.needs) &&
          fleet.circuit(n.node).state !== 'open',
      )
      .map((n) => n.node);
  }

  /**
   * One continuation on a leased node; only a stream is an answer here (the head is gone):
   * any other reply is a failed continuation. The slot is released exactly once.
   */
  private async runContinuation(
    lease: Lease,
    answered: readonly NodeId[],
  ): Promise<{ kind: 'completed' } | { kind: 'aborted' } | { kind: 'broken'; error: unknown } | { kind: 'failed'; error: unknown }> {
    const { deps, request, partial } = this;
    const { exchange } = request;
    const abort = new AttemptAbort(exchange.clientGone);
    const gauge = deps.metrics.inflight.labels({ node: lease.node });
    gauge.value++;
    let upstream: Awaited<ReturnType<typeof sendUpstream>> | undefined;
    try {
      const node = deps.fleet.node(lease.node);
      if (node === undefined) throw new AttemptError('AI_LB_BAD_RESPONSE', `node ${lease.node} left the fleet`);
      const sent = deps.fleet.modelFor(request.model, lease.node);
      const text = partial.text;
      const body = continuationBody(
        node.kind,
        request.surface,
        request.body,
        { text, completionTokens: partial.reportedCompletionTokens() },
        sent,
      );
      if (body === null) throw new AttemptError('AI_LB_BAD_RESPONSE', 'the answer cannot be continued');
      const { requestTimeoutMs } = deps.timeouts;
      abort.arm(requestTimeoutMs, 'AI_LB_HEADERS_TIMEOUT', 'no response head within');
      const traceparent = exchange.trace === null ? null : exchange.trace.startAttempt(lease.node, exchange.attempts);
      const headers = upstreamHeaders(
        exchange.req.headers,
        lease.node,
        exchange.requestId,
        deps.nodeApiKeys,
        'application/json',
        traceparent,
      );
      const sentAt = performance.now();
      upstream = await sendUpstream(deps.pools.get(node), { path: request.path, body: Buffer.from(JSON.stringify(body)), headers }, abort);
      deps.fleet.recordLatency(lease.node, performance.now() - sentAt);
      const status = upstream.statusCode;
      const type = String(upstream.headers['content-type'] ?? '').toLowerCase();
      if (status < 200 || status > 299 || !type.startsWith('text/event-stream')) {
        upstream.body.destroy();
        const failure = status < 200 || status > 299 ? classifyStatus(status) : classifyError(new AttemptError('AI_LB_BAD_RESPONSE', ''));
        const message = `${lease.node}: the continuation was answered HTTP ${status} ${type.slice(0, 40)}`;
        await deps.leases.release(lease, failure.outcome);
        this.noteFailure(lease.node, failure.reason, message);
        return { kind: 'failed', error: new AttemptError('AI_LB_BAD_RESPONSE', message) };
      }
      const splice = new ContinuationSplice(partial, resumeTrailer(lease.node, answered));
      const result = await pipeStream({
        exchange,
        upstream,
        abort,
        shape: OPENAI_SSE,
        transform: splice,
        onRecord: (record) => partial.observe(record),
        plainRecords: true,
        keepOpenOnBreak: true,
        firstTokenTimeoutMs: deps.timeouts.firstTokenTimeoutMs,
        streamIdleTimeoutMs: deps.timeouts.streamIdleTimeoutMs,
        commit: () => {},
        onDroppedEvent: () => deps.metrics.droppedSseEvents.inc({ node: lease.node }),
      });
      if (!result.committed) throw result.error;
      exchange.upstreamEndAt = performance.now();
      if (splice.usage !== null) exchange.usage = splice.usage;
      await deps.leases.release(lease, result.outcome);
      if (result.open === true) {
        this.noteFailure(
          lease.node,
          classifyError(result.error).reason,
          `${lease.node}: continued stream broke: ${describe(result.error)}`,
        );
        return { kind: 'broken', error: result.error };
      }
      return result.outcome === 'success' ? { kind: 'completed' } : { kind: 'aborted' };
    } catch (error) {
      if (upstream !== undefined && !upstream.body.destroyed) upstream.body.destroy();
      const failure = classifyError(error);
      await deps.leases.release(lease, failure.outcome);
      if (failure.reason === 'client_abort') return { kind: 'aborted' };
      if (failure.reason === 'shutdown') throw shuttingDown();
      this.noteFailure(lease.node, failure.reason, `${lease.node}: continuation failed: ${describe(error)}`);
      return { kind: 'failed', error };
    } finally {
      abort.dispose();
      gauge.value--;
      exchange.trace?.endAttempt();
    }
  }

  private noteFailure(node: NodeId, reason: FailureReason, message: string): void {
    const { deps, request } = this;
    deps.metrics.noteAttemptFailure(request.exchange, node, reason, message);
    deps.log.warn(
      { requestId: request.exchange.requestId, model: request.model, node, reason, error: message },
      'stream continuation failed',
    );
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
