/** Node records written before the monitor learned surfaces stay readable, with what ai-lb routed then. */
import { describe, expect, test } from 'vitest';
import { API_SURFACES, isApiSurface, SURFACE_ROUTES, surfacesOf } from './surfaces.ts';

describe('surfacesOf', () => {
  test('a record without surfaces serves chat and embeddings (and the Ollama API on Ollama nodes)', () => {
    expect(surfacesOf({ kind: 'vllm' })).toEqual(['chat_completions', 'embeddings']);
    expect(surfacesOf({ kind: 'ollama' })).toEqual(['chat_completions', 'embeddings', 'ollama']);
    expect(surfacesOf(JSON.parse('{"kind":"llamacpp","surfaces":null}'))).toEqual(['chat_completions', 'embeddings']);
  });

  test('a record with surfaces is taken as recorded, even when empty', () => {
    expect(surfacesOf({ kind: 'vllm', surfaces: ['messages'] })).toEqual(['messages']);
    expect(surfacesOf({ kind: 'vllm', surfaces: [] })).toEqual([]);
  });

  test('every surface has a route; ids are checked', () => {
    expect(Object.keys(SURFACE_ROUTES).sort()).toEqual([...API_SURFACES].sort());
    expect(isApiSurface('rerank')).toBe(true);
    expect(isApiSurface('teleport')).toBe(false);
  });
});
