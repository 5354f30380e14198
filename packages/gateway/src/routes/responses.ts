import { GatewayError, readBounded, type Logger, type NodeId, type StateStore } from '@ai-lb/shared';
import { upstreamHeaders } from '../forwarding/upstream-request.ts';
import { TYPED_SSE } from '../forwarding/stream-shapes.ts';
import { headerSafe, type Exchange } from '../http/exchange.ts';
import type { FleetCache, UpstreamPools } from '../routing/fleet-cache.ts';
import { modelAndStream, require, type InferenceSurface } from './inference-route.ts';

/** Answers of the by-id calls larger than this are not a response object. */
const MAX_BY_ID_BYTES = 16 * 1024 * 1024;

export interface ResponsesDeps {
  store: Pick<StateStore, 'putResponseOwner' | 'getResponseOwner'>;
  /** RESPONSES_TTL_SECS. */
  ttlMs: number;
  log: Logger;
}

/**
 * POST /v1/responses (OpenAI Responses API). A response lives on the server that made it:
 * the gateway remembers which node made each id (in the store: across replicas), sends a
 * follow-up (`previous_response_id`) to that node and no other, and answers a clear 404 or
 * 409 — never a silent answer from a server that does not know the conversation.
 */
export function responsesSurface(deps: ResponsesDeps): InferenceSurface {
  return {
    name: 'responses',
    needs: 'responses',
    upstreamPath: '/v1/responses',
    fallbackToLmModel: true,
    streams: TYPED_SSE,
    validate(body) {
      const input = body.input;
      require(input === undefined || typeof input === 'string' || Array.isArray(input), 'input', "'input' must be a string or an array");
      require(body.previous_response_id === undefined ||
        body.previous_response_id === null ||
        typeof body.previous_response_id === 'string', 'previous_response_id', "'previous_response_id' must be a string");
      return modelAndStream(body);
    },
    async pinnedNode(body) {
      const previous = body.previous_response_id;
      if (typeof previous !== 'string' || previous === '') return null;
      const node = await deps.store.getResponseOwner(previous);
      if (node === null) throw unknownResponse(previous, 'previous_response_id');
      return { node, whenGone: nodeGone(previous, node, 'previous_response_id') };
    },
    observe(_exchange, record, node) {
      const id = responseIdOf(record);
      if (id === null) return;
      deps.store.putResponseOwner(id, node, deps.ttlMs).catch((error: unknown) => {
        deps.log.warn({ err: error, responseId: id, node }, 'could not record which node made a response');
      });
    },
  };
}

/** The id a Responses answer or stream event names: `{object: "response", id}` or `response.created`. */
function responseIdOf(record: Record<string, unknown>): string | null {
  if (record.object === 'response' && typeof record.id === 'string') return record.id;
  if (record.type === 'response.created') {
    const response = record.response as { id?: unknown } | undefined;
    if (typeof response?.id === 'string') return response.id;
  }
  return null;
}

export interface ResponseByIdDeps extends ResponsesDeps {
  fleet: Pick<FleetCache, 'node' | 'circuit'>;
  pools: Pick<UpstreamPools, 'get'>;
  requestTimeoutMs: number;
  maxBodyBytes: number;
  nodeApiKeys: ReadonlyMap<NodeId, string>;
}

/**
 * GET/DELETE /v1/responses/{id}, POST /v1/responses/{id}/cancel, GET /v1/responses/{id}/input_items:
 * to the node that made the response, as they are.
 */
export function responseByIdRoute(deps: ResponseByIdDeps, method: 'GET' | 'DELETE' | 'POST', suffix: '' | '/cancel' | '/input_items') {
  return async function handleResponseById(exchange: Exchange, params: Readonly<Record<string, string>>): Promise<void> {
    const { id } = params;
    const node = await deps.store.getResponseOwner(id);
    if (node === null) throw unknownResponse(id, 'response_id');
    const state = deps.fleet.node(node);
    if (state === undefined || !state.healthy || deps.fleet.circuit(node).state === 'open') throw nodeGone(id, node, 'response_id');
    const body = method === 'POST' ? await exchange.readBody(deps.maxBodyBytes, deps.requestTimeoutMs) : undefined;
    exchange.node = node;
    exchange.attempts = 1;
    const search = exchange.req.url?.includes('?') ? exchange.req.url.slice(exchange.req.url.indexOf('?')) : '';
    let answer: { status: number; contentType: string; bytes: Buffer };
    try {
      const upstream = await deps.pools.get(state).request({
        method,
        path: `/v1/responses/${encodeURIComponent(id)}${suffix}${search}`,
        headers: upstreamHeaders(exchange.req.headers, node, exchange.requestId, deps.nodeApiKeys),
        body: body === undefined || body.length === 0 ? undefined : body,
        headersTimeout: deps.requestTimeoutMs,
        bodyTimeout: deps.requestTimeoutMs,
      });
      const read = await readBounded(upstream.body, { maxBytes: MAX_BY_ID_BYTES });
      if (read.kind !== 'complete') throw new Error(`the answer was ${read.kind === 'too_large' ? 'too large' : 'cut short'}`);
      const contentType = upstream.headers['content-type'];
      answer = {
        status: upstream.statusCode,
        contentType: typeof contentType === 'string' ? contentType : 'application/json',
        bytes: read.body,
      };
    } catch (error) {
      throw new GatewayError('upstream_failed', `${node} did not answer for response '${id.slice(0, 100)}': ${(error as Error).message}`, {
        cause: error,
        headers: { 'x-attempts': '1' },
      });
    }
    exchange.send(
      answer.status,
      { 'content-type': answer.contentType, 'x-routed-node': headerSafe(node), 'x-attempts': '1' },
      answer.bytes,
    );
  };
}

function unknownResponse(id: string, param: string): GatewayError {
  return new GatewayError(
    'response_not_found',
    `response '${id.slice(0, 200)}' is unknown to ai-lb (never seen, or older than RESPONSES_TTL_SECS)`,
    {
      param,
    },
  );
}

function nodeGone(id: string, node: NodeId, param: string): GatewayError {
  return new GatewayError('response_node_unavailable', `response '${id.slice(0, 200)}' lives on ${node}, which cannot take requests now`, {
    param,
    headers: { 'retry-after': '5' },
  });
}
