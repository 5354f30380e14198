import { modelAndStream, require, type InferenceSurface } from './inference-route.ts';

/** POST /v1/completions: text completions, FIM `suffix` included (editors' autocomplete). */
export const completions: InferenceSurface = {
  name: 'completions',
  needs: 'completions',
  upstreamPath: '/v1/completions',
  fallbackToLmModel: true,
  validate(body) {
    const prompt = body.prompt;
    require(typeof prompt === 'string' ||
      (Array.isArray(prompt) && prompt.length > 0), 'prompt', "'prompt' is required: a string or a non-empty array");
    require(body.suffix === undefined || body.suffix === null || typeof body.suffix === 'string', 'suffix', "'suffix' must be a string");
    return modelAndStream(body);
  },
};
