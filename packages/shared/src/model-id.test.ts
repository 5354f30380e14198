import { describe, expect, it } from 'vitest';
import { cleanModelIds, MAX_MODELS_PER_NODE, MODEL_ID_MAX_LENGTH, modelIdProblem } from './model-id.ts';

describe('modelIdProblem', () => {
  it.each([['llama3:latest'], ['Qwen/Qwen3-0.6B'], ['uni-模型'], ['émoji-🦙'], ['with space'], ['x'.repeat(MODEL_ID_MAX_LENGTH)]])(
    'keeps %j',
    (id) => {
      expect(modelIdProblem(id)).toBeNull();
    },
  );

  it.each([
    ['evil\r\nx-injected: 1', 'control_character'],
    ['lf\nonly', 'control_character'],
    ['nul\u0000', 'control_character'],
    ['tab\tid', 'control_character'],
    ['del\u007f', 'control_character'],
    ['c1\u0085next-line', 'control_character'],
    ['c1\u009f', 'control_character'],
    ['lone-high\ud800', 'malformed_unicode'],
    ['\udc00lone-low', 'malformed_unicode'],
    ['x'.repeat(MODEL_ID_MAX_LENGTH + 1), 'too_long'],
    ['x'.repeat(1_000_000), 'too_long'],
  ])('refuses %j (%s)', (id, reason) => {
    expect(modelIdProblem(id)).toBe(reason);
  });
});

describe('cleanModelIds', () => {
  it('keeps valid ids in order, drops duplicates silently, counts the rest by reason', () => {
    expect(cleanModelIds(['b', 'evil\r\n', 'a', 'b', 'x'.repeat(300), 'uni-模型', 'c\u0000'])).toEqual({
      ids: ['b', 'a', 'uni-模型'],
      dropped: { control_character: 2, too_long: 1 },
    });
  });

  it('keeps the first N valid ids and counts the rest as over_cap', () => {
    const ids = Array.from({ length: 100_000 }, (_, i) => `m-${i}`);
    const clean = cleanModelIds(['bad\n', ...ids]);
    expect(clean.ids).toHaveLength(MAX_MODELS_PER_NODE);
    expect(clean.ids[0]).toBe('m-0');
    expect(clean.ids.at(-1)).toBe(`m-${MAX_MODELS_PER_NODE - 1}`);
    expect(clean.dropped).toEqual({ control_character: 1, over_cap: 100_000 - MAX_MODELS_PER_NODE });
  });

  it('an empty or clean list drops nothing', () => {
    expect(cleanModelIds([])).toEqual({ ids: [], dropped: {} });
    expect(cleanModelIds(['a'], 1)).toEqual({ ids: ['a'], dropped: {} });
  });
});
