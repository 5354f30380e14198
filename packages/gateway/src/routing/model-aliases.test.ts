import { describe, expect, it } from 'vitest';
import { aliasesOfNode, isAliasServed, modelForNode, servedAliases } from './model-aliases.ts';

const aliases = new Map([
  ['llama3.1-8b', ['llama3.1:8b', 'meta-llama/Llama-3.1-8B-Instruct', 'lmstudio-community/meta-llama-3.1-8b-instruct']],
  ['qwen', ['qwen2.5:7b']],
]);

describe('model aliases', () => {
  it('each node gets the id it knows the model by', () => {
    expect(modelForNode(aliases, 'llama3.1-8b', ['llama3.1:8b', 'mistral'])).toBe('llama3.1:8b');
    expect(modelForNode(aliases, 'llama3.1-8b', ['meta-llama/Llama-3.1-8B-Instruct'])).toBe('meta-llama/Llama-3.1-8B-Instruct');
    expect(modelForNode(aliases, 'llama3.1-8b', ['mistral'])).toBeNull();
  });

  it('a concrete id a node lists is served as is, alias or not', () => {
    expect(modelForNode(aliases, 'llama3.1:8b', ['llama3.1:8b'])).toBe('llama3.1:8b');
    expect(modelForNode(aliases, 'llama3.1-8b', ['llama3.1-8b', 'llama3.1:8b'])).toBe('llama3.1-8b');
    expect(modelForNode(new Map(), 'm', ['m'])).toBe('m');
  });

  it('/v1/models lists an alias once some node serves one of its ids; /v1/nodes shows a node’s aliases', () => {
    const served = new Set(['meta-llama/Llama-3.1-8B-Instruct']);
    expect(isAliasServed(aliases, 'llama3.1-8b', served)).toBe(true);
    expect(servedAliases(aliases, served)).toEqual(['llama3.1-8b']);
    expect(aliasesOfNode(aliases, ['qwen2.5:7b', 'llama3.1:8b'])).toEqual(['llama3.1-8b', 'qwen']);
  });
});
