import { modelAndStream, require, type InferenceSurface } from './inference-route.ts';

/**
 * The surfaces ai-lb passes through as they are, to nodes that serve them natively: the
 * request's `model` picks the nodes, the rest of the body is the server's business.
 */
function modelRequired(body: Record<string, unknown>): { stream: boolean } {
  require(typeof body.model === 'string' && body.model !== '', 'model', "'model' is required");
  return modelAndStream(body);
}

/** POST /v1/rerank and /rerank (Jina/Cohere v1 shape: query + documents). */
export const rerank: InferenceSurface = {
  name: 'rerank',
  needs: 'rerank',
  upstreamPath: '/v1/rerank',
  fallbackToLmModel: false,
  validate(body) {
    require(typeof body.query === 'string', 'query', "'query' is required: a string");
    require(Array.isArray(body.documents) && body.documents.length > 0, 'documents', "'documents' is required: a non-empty array");
    return modelRequired(body);
  },
};

/** POST /v2/rerank (Cohere v2 shape, vLLM). */
export const rerankV2: InferenceSurface = { ...rerank, name: 'rerank_v2', needs: 'rerank_v2', upstreamPath: '/v2/rerank' };

/** POST /v1/score (text pairs: text_1, text_2). */
export const score: InferenceSurface = {
  name: 'score',
  needs: 'score',
  upstreamPath: '/v1/score',
  fallbackToLmModel: false,
  validate: modelRequired,
};

/** POST /v1/images/generations. */
export const imagesGenerations: InferenceSurface = {
  name: 'images',
  needs: 'images_generations',
  upstreamPath: '/v1/images/generations',
  fallbackToLmModel: false,
  validate(body) {
    require(typeof body.prompt === 'string' && body.prompt !== '', 'prompt', "'prompt' is required: a string");
    return modelRequired(body);
  },
};

/** POST /v1/audio/transcriptions: multipart (`file`, `model`, …), the same bytes forwarded. */
export const audioTranscriptions: InferenceSurface = {
  name: 'audio_transcriptions',
  needs: 'audio_transcriptions',
  upstreamPath: '/v1/audio/transcriptions',
  fallbackToLmModel: false,
  body: 'multipart',
  validate: (form) => {
    require(typeof form.model === 'string' && form.model !== '', 'model', "the form field 'model' is required");
    return { stream: false };
  },
};

/** POST /v1/audio/translations: as transcriptions. */
export const audioTranslations: InferenceSurface = {
  ...audioTranscriptions,
  name: 'audio_translations',
  needs: 'audio_translations',
  upstreamPath: '/v1/audio/translations',
};

/** POST /v1/audio/speech: JSON in, audio bytes out, relayed as they come. */
export const audioSpeech: InferenceSurface = {
  name: 'audio_speech',
  needs: 'audio_speech',
  upstreamPath: '/v1/audio/speech',
  fallbackToLmModel: false,
  answers: 'binary',
  validate(body) {
    require(typeof body.input === 'string' && body.input !== '', 'input', "'input' is required: a string");
    modelRequired(body);
    return { stream: false };
  },
};
