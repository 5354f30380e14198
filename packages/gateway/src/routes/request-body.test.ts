import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { multipartModel, topLevelValueSpan, withModel, withMultipartModel } from './request-body.ts';

const rewrite = (text: string, model: string) => withModel(Buffer.from(text), JSON.parse(text).model, model).toString('utf8');

describe('withModel: only the model value changes', () => {
  test('numbers, spacing and key order stay exactly as the client sent them', () => {
    const text = '{ "seed": 12345678901234567890, "model" : "auto",\n "x": 1e999, "messages": [] }';
    expect(rewrite(text, 'llama3')).toBe('{ "seed": 12345678901234567890, "model" : "llama3",\n "x": 1e999, "messages": [] }');
  });

  test('the same model: the very same buffer, nothing rewritten', () => {
    const raw = Buffer.from('{"model":"m1","seed":12345678901234567890}');
    expect(withModel(raw, JSON.parse(raw.toString()).model, 'm1')).toBe(raw);
  });

  test('a body without model gets one; nested "model" keys are not the top-level one', () => {
    expect(rewrite('{"messages":[{"model":"inner"}]}', 'm1')).toBe('{"model":"m1","messages":[{"model":"inner"}]}');
    expect(rewrite('{}', 'm1')).toBe('{"model":"m1"}');
    expect(rewrite(' { } ', 'm1')).toBe(' {"model":"m1" } ');
  });

  test('escaped keys, repeated keys, strings with braces and quotes, non-string values', () => {
    expect(rewrite('{"mod\\u0065l":"auto","a":"}{\\"model\\":"}', 'm1')).toBe('{"mod\\u0065l":"m1","a":"}{\\"model\\":"}');
    expect(rewrite('{"model":"a","model":"auto"}', 'm1')).toBe('{"model":"a","model":"m1"}');
    expect(rewrite('{"model":null}', 'm1')).toBe('{"model":"m1"}');
    expect(rewrite('{"model":{"a":[1,2]},"b":2}', 'm1')).toBe('{"model":"m1","b":2}');
    expect(rewrite('{"a":1,"model":"auto"}', 'uni-模型 "q"')).toBe('{"a":1,"model":"uni-模型 \\"q\\""}');
    expect(rewrite('{"models":"x","mode":1,"model":"auto","modelx":2}', 'm1')).toBe('{"models":"x","mode":1,"model":"m1","modelx":2}');
    // A string ending in an escaped backslash, one holding an escaped quote, multi-byte text.
    expect(rewrite('{"a":"x\\\\","model":"auto"}', 'm1')).toBe('{"a":"x\\\\","model":"m1"}');
    expect(rewrite('{"a":"q\\"}\\\\\\"","b":"é模","model":"auto"}', 'm1')).toBe('{"a":"q\\"}\\\\\\"","b":"é模","model":"m1"}');
  });

  test('property: any JSON object parses back to itself with model replaced', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 6 }),
        fc.option(fc.jsonValue(), { nil: undefined }),
        fc.string(),
        fc.boolean(),
        (object, oldModel, model, spaced) => {
          const { model: _, ...rest } = object;
          const body = oldModel === undefined ? rest : { ...rest, model: oldModel };
          const text = JSON.stringify(body, null, spaced ? 1 : undefined);
          const out = rewrite(text, model);
          expect(JSON.parse(out)).toEqual({ ...JSON.parse(text), model });
        },
      ),
      { numRuns: 500 },
    );
  });

  test('topLevelValueSpan is null without the key', () => {
    expect(topLevelValueSpan(Buffer.from('{"a":{"model":1}}'), 'model')).toBeNull();
  });
});

describe('multipart uploads: the model field', () => {
  const form = () => {
    const data = new FormData();
    data.set('file', new Blob([Buffer.from('RIFF\u0000\u0001audio bytes --not a boundary')]), 'a.wav');
    data.set('model', 'auto');
    data.set('language', 'en');
    return data;
  };
  const encode = async (data: FormData) => {
    const request = new Request('http://x/', { method: 'POST', body: data });
    return { raw: Buffer.from(await request.arrayBuffer()), contentType: request.headers.get('content-type')! };
  };

  test('the model is read from the form; a missing one is undefined', async () => {
    const { raw, contentType } = await encode(form());
    expect(await multipartModel(raw, contentType)).toBe('auto');
    const none = new FormData();
    none.set('language', 'en');
    const empty = await encode(none);
    expect(await multipartModel(empty.raw, empty.contentType)).toBeUndefined();
    await expect(multipartModel(Buffer.from('garbage'), 'multipart/form-data')).rejects.toMatchObject({ status: 400 });
  });

  test('only the model value changes; the file and other fields keep every byte', async () => {
    const { raw, contentType } = await encode(form());
    const out = withMultipartModel(raw, contentType, 'whisper-large-v3');
    expect(await multipartModel(out, contentType)).toBe('whisper-large-v3');
    expect(out.length).toBe(raw.length - 'auto'.length + 'whisper-large-v3'.length);
    const before = raw.toString('latin1');
    const after = out.toString('latin1');
    expect(after.replace('whisper-large-v3', 'auto')).toBe(before);
  });
});
