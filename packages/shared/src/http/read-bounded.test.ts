import { PassThrough, Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { ByteBudget, ByteCollector, readBounded } from './read-bounded.ts';

describe('readBounded', () => {
  test('a body within the limit comes back whole, across chunks', async () => {
    const read = await readBounded(Readable.from([Buffer.from('{"a":'), Buffer.from('1}')]), { maxBytes: 7 });
    expect(read).toMatchObject({ kind: 'complete', body: Buffer.from('{"a":1}') });
  });

  test('one byte over the limit stops reading and destroys the stream', async () => {
    const endless = new Readable({
      read() {
        this.push(Buffer.alloc(1024));
      },
    });
    const read = await readBounded(endless, { maxBytes: 64 * 1024 });
    expect(read.kind).toBe('too_large');
    expect(endless.destroyed).toBe(true);
  });

  test('pauseWhenTooLarge leaves the stream open (a server request: the error answer still goes out)', async () => {
    const stream = new PassThrough();
    const pending = readBounded(stream, { maxBytes: 3, pauseWhenTooLarge: true });
    stream.write(Buffer.from('abcd'));
    expect((await pending).kind).toBe('too_large');
    expect(stream.destroyed).toBe(false);
    expect(stream.isPaused()).toBe(true);
  });

  test('a body that never ends is a timeout; a stream closed early is closed; an error rejects', async () => {
    const silent = new PassThrough();
    expect((await readBounded(silent, { maxBytes: 10, timeoutMs: 20 })).kind).toBe('timeout');
    const cut = new PassThrough();
    const closed = readBounded(cut, { maxBytes: 10 });
    cut.destroy();
    expect((await closed).kind).toBe('closed');
    const broken = new PassThrough();
    const failing = readBounded(broken, { maxBytes: 10 });
    broken.destroy(new Error('boom'));
    await expect(failing).rejects.toThrow('boom');
  });
});

test('ByteCollector keeps nothing once over its limit', () => {
  const c = new ByteCollector(4);
  expect(c.add(Buffer.from('ab'))).toBe('ok');
  expect(c.add(Buffer.from('cd'))).toBe('ok');
  expect(c.take().toString()).toBe('abcd');
  expect(c.add(Buffer.from('e'))).toBe('too_large');
  expect(c.size).toBe(5);
});

test('a budget shared by collectors: over it, a refusal; released bytes are free again', async () => {
  const budget = new ByteBudget(10);
  const first = new ByteCollector(100, budget);
  const second = new ByteCollector(100, budget);
  expect(first.add(Buffer.alloc(6))).toBe('ok');
  expect(second.add(Buffer.alloc(6))).toBe('over_budget');
  expect(budget.inUse).toBe(6);
  first.release();
  first.release();
  expect(budget.inUse).toBe(0);
  const read = await readBounded(Readable.from([Buffer.alloc(8)]), { maxBytes: 100, budget });
  expect(budget.inUse).toBe(8);
  if (read.kind === 'complete') read.release();
  expect(budget.inUse).toBe(0);
  expect((await readBounded(Readable.from([Buffer.alloc(11)]), { maxBytes: 100, budget })).kind).toBe('over_budget');
  expect(budget.inUse).toBe(0);
});
