import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { affinityKey, PROMPT_PREFIX_CHARS } from './affinity-key.ts';

const arbText = fc.string({ minLength: 1, maxLength: 200 });
const arbTurns = fc.array(fc.tuple(arbText, arbText), { maxLength: 5 });

describe('affinityKey', () => {
  it('x-session-id wins over the prompt', () => {
    expect(affinityKey({ sessionId: ' conv-42 ', body: { messages: [{ role: 'user', content: 'hi' }] } })).toBe('session:conv-42');
  });

  it('every turn of a chat has the key of its first turn', () => {
    fc.assert(
      fc.property(fc.option(arbText, { nil: undefined }), arbText, arbTurns, (system, first, turns) => {
        const head = [...(system === undefined ? [] : [{ role: 'system', content: system }]), { role: 'user', content: first }];
        const later = turns.flatMap(([answer, question]) => [
          { role: 'assistant', content: answer },
          { role: 'user', content: question },
        ]);
        expect(affinityKey({ body: { messages: [...head, ...later] } })).toBe(affinityKey({ body: { messages: head } }));
      }),
    );
  });

  it('conversations that share a system prompt but not their first message get different keys', () => {
    const system = { role: 'system', content: 'You are a helpful assistant. '.repeat(100) };
    const a = affinityKey({ body: { messages: [system, { role: 'user', content: 'Summarise report A' }] } });
    const b = affinityKey({ body: { messages: [system, { role: 'user', content: 'Summarise report B' }] } });
    expect(a).not.toBe(b);
  });

  it('content parts, Anthropic system and Responses instructions are part of the prefix', () => {
    const parts = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'hel' },
            { type: 'text', text: 'lo' },
          ],
        },
      ],
    };
    expect(affinityKey({ body: parts })).toBe(affinityKey({ body: { messages: [{ role: 'user', content: 'hello' }] } }));
    const anthropic = (system: string) => affinityKey({ body: { system, messages: [{ role: 'user', content: 'q' }] } });
    expect(anthropic('be brief')).not.toBe(anthropic('be verbose'));
    const responses = (instructions: string) =>
      affinityKey({
        body: {
          instructions,
          input: [
            { role: 'user', content: 'q' },
            { role: 'assistant', content: 'a' },
          ],
        },
      });
    expect(responses('x')).toBe(affinityKey({ body: { instructions: 'x', input: [{ role: 'user', content: 'q' }] } }));
    expect(responses('x')).not.toBe(responses('y'));
  });

  it('prompt and input: the first characters decide', () => {
    const start = 'p'.repeat(PROMPT_PREFIX_CHARS);
    expect(affinityKey({ body: { prompt: `${start} tail one` } })).toBe(affinityKey({ body: { prompt: `${start} tail two` } }));
    expect(affinityKey({ body: { input: ['first', 'second'] } })).toBe(affinityKey({ body: { input: 'first' } }));
    expect(affinityKey({ body: { prompt: [1, 2, 3] } })).toMatch(/^prefix:[0-9a-f]{40}$/);
  });

  it('no key without a prompt; never throws on any body', () => {
    expect(affinityKey({ body: { model: 'm' } })).toBeNull();
    expect(affinityKey({ body: null })).toBeNull();
    expect(affinityKey({ sessionId: '   ', body: { messages: [] } })).toBeNull();
    fc.assert(
      fc.property(fc.anything(), fc.option(fc.string(), { nil: undefined }), (body, sessionId) => {
        const key = affinityKey({ sessionId, body });
        expect(key === null || typeof key === 'string').toBe(true);
      }),
    );
  });

  it('a multi-megabyte image part costs what the hashed prefix does: the same key as its first 40 KB, 80 keys within a second', () => {
    const image = `data:image/png;base64,${'iVBORw0KGgo'.repeat(400_000)}`; // 4.4 MB
    const body = (url: string) => ({
      messages: [
        { role: 'system', content: 'You describe images.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in this image?' },
            { type: 'image_url', image_url: { url } },
          ],
        },
      ],
    });
    const key = affinityKey({ body: body(image) });
    expect(key).toMatch(/^prefix:/);
    expect(key).toBe(affinityKey({ body: body(image.slice(0, 40_000)) }));
    expect(key).not.toBe(affinityKey({ body: body(image.slice(0, 20_000)) }));
    const started = performance.now();
    for (let i = 0; i < 80; i++) affinityKey({ body: body(image) });
    // Stringifying the whole image for each key took seconds for these (docs/performance.md).
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
