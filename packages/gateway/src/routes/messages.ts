import { GatewayError, type NodeState } from '@ai-lb/shared';
import { TYPED_SSE } from '../forwarding/stream-shapes.ts';
import type { Exchange } from '../http/exchange.ts';
import { estimateCountTokens, ESTIMATE_HEADER, ESTIMATE_HEADER_VALUE } from '../surfaces/anthropic/count-tokens.ts';
import { messagesToChatRequest } from '../surfaces/anthropic/request.ts';
import { chatCompletionToMessage } from '../surfaces/anthropic/response.ts';
import { MessagesStreamTranslator } from '../surfaces/anthropic/stream.ts';
import {
  modelAndStream,
  readRequestBody,
  require,
  routeInference,
  translatedBytes,
  type InferenceDeps,
  type InferenceSurface,
  type RequestTranslation,
} from './inference-route.ts';

/**
 * POST /v1/messages: Anthropic Messages (Claude Code, the Anthropic SDK). Nodes that serve it
 * get the request as it is; every other chat-capable node gets it translated to chat
 * completions, and its answer translated back (text, images, tools, stop reasons, usage,
 * and streams as Anthropic's event sequence).
 */
export const messages: InferenceSurface = {
  name: 'messages',
  needs: 'messages',
  upstreamPath: '/v1/messages',
  fallbackToLmModel: false,
  streams: TYPED_SSE,
  validate(body) {
    require(typeof body.model === 'string' && body.model !== '', 'model', "'model' is required");
    require(Array.isArray(body.messages) && body.messages.length > 0, 'messages', "'messages' is required and must be a non-empty array");
    require(Number.isInteger(body.max_tokens) &&
      (body.max_tokens as number) > 0, 'max_tokens', "'max_tokens' is required: a positive integer");
    return modelAndStream(body);
  },
  translation: {
    via: 'chat_completions',
    begin(body, model) {
      const { chat, stopSequences } = messagesToChatRequest({ ...body, model }, { acceptsTopK: true });
      const bytes = translatedBytes(chat);
      const options = { model, stopSequences };
      const translation: RequestTranslation = {
        request: (node: NodeState) => ({ path: '/v1/chat/completions', body: bytes.forKind(node.kind) }),
        answer: (upstream) => chatCompletionToMessage(upstream, options),
        stream: () => new MessagesStreamTranslator(options),
        streamContentType: 'text/event-stream',
      };
      return translation;
    },
  },
};

/** The part of count_tokens that goes to nodes that count natively (vLLM, llama.cpp). */
const countTokens: InferenceSurface = {
  name: 'messages_count_tokens',
  needs: 'messages_count_tokens',
  upstreamPath: '/v1/messages/count_tokens',
  fallbackToLmModel: false,
  validate(body) {
    require(typeof body.model === 'string' && body.model !== '', 'model', "'model' is required");
    require(Array.isArray(body.messages), 'messages', "'messages' is required: an array");
    return { stream: false };
  },
};

/**
 * POST /v1/messages/count_tokens: counted by a node serving the model that counts natively,
 * with its own tokenizer; where none does, an estimate the gateway makes itself, marked so
 * in x-ai-lb-token-count (clients use the count to decide when to compact a conversation:
 * a rough count serves them, a 404 would not).
 */
export function countTokensRoute(deps: InferenceDeps) {
  return async function handleCountTokens(exchange: Exchange): Promise<void> {
    const body = await readRequestBody(exchange, countTokens, deps.config);
    countTokens.validate(body.value);
    const model = deps.fleet.knownModel(body.value.model as string);
    if (model === undefined) {
      throw new GatewayError('model_not_found', `The model '${String(body.value.model).slice(0, 200)}' does not exist`, { param: 'model' });
    }
    const counts = deps.fleet.healthyNodesFor(model).some((n) => deps.fleet.surfacesOf(n.node).has(countTokens.needs));
    if (counts) return routeInference(deps, countTokens, exchange, body);
    exchange.model = model;
    exchange.sendJson(200, estimateCountTokens(body.value), { [ESTIMATE_HEADER]: ESTIMATE_HEADER_VALUE });
  };
}
