import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LineWriter } from './line-writer.ts';
import { accessLogger, createLogger, type CreateLoggerOptions } from './logger.ts';

/** A logger whose lines land in an array, parsed. */
function capture(options: CreateLoggerOptions = {}) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ ...options, destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
  return { log, lines };
}

describe('createLogger', () => {
  it('prints [redacted] for keys and authorization headers, wherever a caller puts them', () => {
    const { log, lines } = capture();
    log.info(
      {
        authorization: 'Bearer sk-top',
        apiKey: 'sk-1',
        apiKeys: ['sk-2'],
        headers: { authorization: 'Bearer sk-3', 'x-api-key': 'sk-4', accept: 'text/plain' },
        req: { headers: { authorization: 'Bearer sk-5' } },
        node: { apiKey: 'sk-6', id: 'a:1' },
      },
      'request',
    );
    expect(lines).toEqual([
      expect.objectContaining({
        msg: 'request',
        authorization: '[redacted]',
        apiKey: '[redacted]',
        apiKeys: '[redacted]',
        headers: { authorization: '[redacted]', 'x-api-key': '[redacted]', accept: 'text/plain' },
        req: { headers: { authorization: '[redacted]' } },
        node: { apiKey: '[redacted]', id: 'a:1' },
      }),
    ]);
    expect(JSON.stringify(lines)).not.toMatch(/sk-/);
  });

  it('writes JSON lines with the level label, epoch-ms time, base fields and child bindings', () => {
    const { log, lines } = capture({ base: { service: 'gateway' } });
    log.child({ requestId: 'r1' }).warn({ node: 'a:1' }, 'slow');
    expect(lines).toEqual([{ level: 'warn', time: expect.any(Number), service: 'gateway', requestId: 'r1', node: 'a:1', msg: 'slow' }]);
  });

  it('drops lines below its level', () => {
    const { log, lines } = capture({ level: 'warn' });
    log.info('hidden');
    log.error('shown');
    expect(lines.map((l) => l.msg)).toEqual(['shown']);
  });
});

describe('accessLogger', () => {
  it("writes whole lines to the parent's stream (at once, to a stream not the LineWriter) with its bindings, or is null when the parent logs nothing at info", () => {
    const lines: string[] = [];
    const destination = { write: (line: string) => void lines.push(line) };
    const access = accessLogger(createLogger({ destination }).child({ service: 'gateway' }));
    expect(access?.bindings).toBe(',"service":"gateway"');
    const encoder = {
      maxBytes: () => 64,
      encode: (buf: Buffer, at: number, item: string, timeMs: number) => at + buf.write(`{"a":"${item}","t":${timeMs}}\n`, at),
    };
    const before = Date.now();
    access!.writeLater(encoder, 'é');
    expect(lines).toHaveLength(1);
    const { a, t } = JSON.parse(lines[0]) as { a: string; t: number };
    expect(a).toBe('é');
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Date.now());
    expect(accessLogger(createLogger({ destination }))?.bindings).toBe('');
    expect(accessLogger(createLogger({ level: 'warn', destination }))).toBeNull();
  });
  it("queues lines on the process's LineWriter: encoded when the batch goes out, after pino's earlier lines", () => {
    const dir = mkdtempSync(join(tmpdir(), 'access-log-'));
    const fd = openSync(join(dir, 'log'), 'w');
    try {
      const writer = new LineWriter(fd, { batchMs: 60_000 });
      const log = createLogger({ destination: writer });
      const access = accessLogger(log);
      let encoded = 0;
      const encoder = {
        maxBytes: () => 16,
        encode: (buf: Buffer, at: number, item: string) => {
          encoded++;
          return at + buf.write(`${item}\n`, at);
        },
      };
      log.info('first');
      access!.writeLater(encoder, 'later');
      expect(encoded).toBe(0);
      writer.flushSync();
      expect(encoded).toBe(1);
      const lines = readFileSync(join(dir, 'log'), 'utf8').trimEnd().split('\n');
      expect(JSON.parse(lines[0])).toMatchObject({ msg: 'first' });
      expect(lines[1]).toBe('later');
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
