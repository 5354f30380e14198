import { GatewayError } from '@ai-lb/shared';
import type { InferenceSurface } from './inference-route.ts';

/** `input` is a string or an array (strings, or token arrays); `model` a string. */
export function validateEmbeddingsBody(body: Record<string, unknown>): { stream: boolean } {
  if (body.model !== undefined && typeof body.model !== 'string') {
    throw new GatewayError('invalid_request', "'model' must be a string", { param: 'model' });
  }
  const input = body.input;
  const valid = typeof input === 'string' ? input.length > 0 : Array.isArray(input) && input.length > 0;
  if (!valid) {
    throw new GatewayError('invalid_request', "'input' is required: a non-empty string or array", { param: 'input' });
  }
  // Embeddings never stream; a stray `stream` field is the upstream's business.
  return { stream: false };
}

/** POST /v1/embeddings */
export const embeddings: InferenceSurface = {
  name: 'embeddings',
  needs: 'embeddings',
  upstreamPath: '/v1/embeddings',
  fallbackToLmModel: false,
  validate: validateEmbeddingsBody,
};
