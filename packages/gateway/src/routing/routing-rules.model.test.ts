import { describe, expect, test } from 'vitest';
import { GatewayError } from '@ai-lb/shared';
import { resolveModel, type ModelNodeView, type ResolveModelInput } from './routing-rules.ts';

const node = (models: string[], eligible = true, healthy = true): ModelNodeView => ({ models, healthy, eligible: eligible && healthy });

type Overrides = Partial<Omit<ResolveModelInput, 'nodes' | 'knownModel'>> & { nodes?: ModelNodeView[] };

function input({ nodes = [node(['llama3', 'qwen']), node(['qwen', 'mistral'])], ...overrides }: Overrides): ResolveModelInput {
  return {
    requested: 'auto',
    fallbackToLmModel: true,
    sentinels: ['auto', 'default'],
    lmModel: undefined,
    preferred: [],
    strategy: 'any_first',
    requireAll: false,
    knownModel: (name) => {
      const all = nodes.flatMap((n) => n.models);
      return all.find((m) => m === name) ?? all.find((m) => m.toLowerCase() === name.toLowerCase());
    },
    nodes: () => nodes,
    fleetAuthoritative: () => true,
    retryAfterSecs: 2,
    ...overrides,
  };
}

function errorOf(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a GatewayError');
}

describe('resolveModel', () => {
  test('a concrete id served by a node resolves to itself', () => {
    expect(resolveModel(input({ requested: 'mistral' }))).toEqual({ model: 'mistral', viaSentinel: false });
  });

  test('a concrete id matches case-insensitively when there is no exact match', () => {
    expect(resolveModel(input({ requested: 'LLAMA3' })).model).toBe('llama3');
  });

  test('a known model takes the fast path without reading the fleet', () => {
    const model = resolveModel({
      ...input({ requested: 'qwen' }),
      knownModel: (id) => (id === 'qwen' ? id : undefined),
      nodes: () => {
        throw new Error('must not be called');
      },
    });
    expect(model.model).toBe('qwen');
  });

  test('an unknown model is a 404 naming it, at once', () => {
    const error = errorOf(() => resolveModel(input({ requested: 'gpt-9' })));
    expect(error.status).toBe(404);
    expect(error.code).toBe('model_not_found');
    expect(error.param).toBe('model');
    expect(error.message).toContain('gpt-9');
  });

  test('an unknown model while the fleet is not known in full (no monitor has scanned since it took over) is a 503 no_fleet with Retry-After', () => {
    const error = errorOf(() => resolveModel(input({ requested: 'gpt-9', fleetAuthoritative: () => false, retryAfterSecs: 7 })));
    expect(error.status).toBe(503);
    expect(error.code).toBe('no_fleet');
    expect(error.headers).toEqual({ 'retry-after': '7' });
    expect(error.message).toContain('gpt-9');
    // A known model never asks.
    const known = resolveModel({
      ...input({ requested: 'qwen' }),
      fleetAuthoritative: () => {
        throw new Error('must not be called');
      },
    });
    expect(known.model).toBe('qwen');
  });

  test('an alias some node serves resolves to itself, also as LM_MODEL for a body without model', () => {
    const isServedAlias = (name: string) => name === 'llama-8b';
    const knownModel = (name: string) => (['llama-8b', 'qwen'].includes(name) ? name : undefined);
    expect(resolveModel({ ...input({ requested: 'llama-8b' }), isServedAlias, knownModel })).toEqual({
      model: 'llama-8b',
      viaSentinel: false,
    });
    expect(resolveModel({ ...input({ requested: undefined, lmModel: 'llama-8b' }), isServedAlias, knownModel }).model).toBe('llama-8b');
  });

  test('a model only an unhealthy node lists is still known (503 later, not 404)', () => {
    expect(resolveModel(input({ requested: 'old', nodes: [node(['old'], false, false), node(['qwen'])] })).model).toBe('old');
  });

  test('sentinels are case-insensitive and pick the first available model (any_first)', () => {
    expect(resolveModel(input({ requested: 'AUTO' }))).toEqual({ model: 'llama3', viaSentinel: true });
    expect(resolveModel(input({ requested: 'Default' })).model).toBe('llama3');
  });

  test('PREFERRED_MODELS order wins over fleet order', () => {
    expect(resolveModel(input({ preferred: ['nope', 'mistral', 'qwen'] })).model).toBe('mistral');
  });

  test('intersection_first and ?require_all pick a model every healthy node serves', () => {
    expect(resolveModel(input({ strategy: 'intersection_first' })).model).toBe('qwen');
    expect(resolveModel(input({ requireAll: true })).model).toBe('qwen');
    // Preferred order applies inside the intersection.
    expect(resolveModel(input({ requireAll: true, preferred: ['llama3', 'qwen'] })).model).toBe('qwen');
  });

  test('intersection falls back to any_first when no model is common', () => {
    const nodes = [node(['a']), node(['b'])];
    expect(resolveModel(input({ requireAll: true, nodes })).model).toBe('a');
  });

  test('a sentinel prefers a model with an eligible node over one whose nodes are all full', () => {
    const nodes = [node(['llama3'], false), node(['qwen'])];
    expect(resolveModel(input({ nodes })).model).toBe('qwen');
  });

  test('when every node is full, a sentinel still resolves (the request then gets 429, not 404)', () => {
    const nodes = [node(['llama3'], false), node(['qwen'], false)];
    expect(resolveModel(input({ nodes })).model).toBe('llama3');
  });

  test('unhealthy nodes do not count for sentinels; no healthy node at all is a 503', () => {
    expect(resolveModel(input({ nodes: [node(['llama3'], false, false), node(['qwen'])] })).model).toBe('qwen');
    const error = errorOf(() => resolveModel(input({ nodes: [node(['llama3'], false, false)] })));
    expect(error.status).toBe(503);
  });

  test('LM_MODEL as the requested model behaves as a sentinel, preferring itself when served', () => {
    expect(resolveModel(input({ requested: 'Mistral', lmModel: 'mistral' }))).toEqual({ model: 'mistral', viaSentinel: true });
    expect(resolveModel(input({ requested: 'my-default', lmModel: 'my-default' })).model).toBe('llama3');
  });

  test('a missing model on chat uses LM_MODEL; without LM_MODEL it is a 400 naming model', () => {
    expect(resolveModel(input({ requested: undefined, lmModel: 'qwen' })).model).toBe('qwen');
    const error = errorOf(() => resolveModel(input({ requested: undefined })));
    expect(error.status).toBe(400);
    expect(error.param).toBe('model');
  });

  test('a missing model on embeddings is a 400 even with LM_MODEL set', () => {
    const error = errorOf(() => resolveModel(input({ requested: undefined, fallbackToLmModel: false, lmModel: 'qwen' })));
    expect(error.status).toBe(400);
    expect(error.param).toBe('model');
  });
});
