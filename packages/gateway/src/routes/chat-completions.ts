import { GatewayError } from '@ai-lb/shared';
import type { InferenceSurface } from './inference-route.ts';

/**
 * Only what the gateway relies on is checked (a 400 naming the field); everything
 * else — tools, response_format, unknown vendor fields — goes upstream untouched.
 */
export function validateChatBody(body: Record<string, unknown>): { stream: boolean } {
  if (body.model !== undefined && typeof body.model !== 'string') {
    throw new GatewayError('invalid_request', "'model' must be a string", { param: 'model' });
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw new GatewayError('invalid_request', "'messages' is required and must be a non-empty array", { param: 'messages' });
  }
  if (body.messages.some((m) => m === null || typeof m !== 'object' || Array.isArray(m))) {
    throw new GatewayError('invalid_request', "every item of 'messages' must be an object", { param: 'messages' });
  }
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
    throw new GatewayError('invalid_request', "'stream' must be a boolean", { param: 'stream' });
  }
  return { stream: body.stream === true };
}

/** POST /v1/chat/completions */
export const chatCompletions: InferenceSurface = {
  name: 'chat',
  needs: 'chat_completions',
  upstreamPath: '/v1/chat/completions',
  fallbackToLmModel: true,
  validate: validateChatBody,
};
