import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type LineEncoder, LineWriter } from './line-writer.ts';

const LOGGER = fileURLToPath(new URL('./logger.ts', import.meta.url));

/** `script` (ESM, with `createLogger` and `accessLogger` in scope) in a process of its own under tsx; stdout and stderr piped. */
function spawnWithLogger(script: string) {
  const source = `import { accessLogger, createLogger } from ${JSON.stringify(LOGGER)};\n${script}`;
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs `script` with a stderr reader that starts late; resolves with its stderr once it exits. */
function runWithLogger(script: string, readDelayMs: number): Promise<{ code: number | null; stderr: string }> {
  const child = spawnWithLogger(script);
  const chunks: Buffer[] = [];
  // A reader that lags: the pipe fills and the writer must queue.
  child.stderr.pause();
  setTimeout(() => child.stderr.resume(), readDelayMs);
  child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr: Buffer.concat(chunks).toString() })));
}

describe('LineWriter through a real pipe', () => {
  it('delivers every line once and in order to a reader that lags, including what is queued at exit', async () => {
    // Every third line is queued for later (the access log's way), the others are written by pino.
    const { code, stderr } = await runWithLogger(
      `const log = createLogger();
       const access = accessLogger(log);
       const later = { maxBytes: () => 64, encode: (buf, at, i) => at + buf.write(JSON.stringify({ i, text: 'later' }) + '\\n', at) };
       for (let i = 0; i < 20000; i++) {
         if (i % 3 === 0) access.writeLater(later, i);
         else log.info({ i, text: 'é'.repeat(i % 7) }, 'line');
       }
       process.exit(0);`,
      300,
    );
    expect(code).toBe(0);
    const seen = stderr
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { i: number; text: string });
    expect(seen.map((line) => line.i)).toEqual(Array.from({ length: 20000 }, (_, i) => i));
    expect(seen[13].text).toBe('éééééé');
    expect(seen[12].text).toBe('later');
  });
});

describe("LineWriter when stderr's reader goes away", () => {
  it('keeps the process running: lines are dropped, nothing throws', async () => {
    const child = spawnWithLogger(
      `const log = createLogger();
       let i = 0;
       const timer = setInterval(() => {
         for (let k = 0; k < 500; k++) log.info({ i: i++ }, 'line');
         if (i >= 20000) { clearInterval(timer); process.stdout.write('alive ' + i + '\\n'); }
       }, 5);`,
    );
    // The reader takes a little, then closes its end: every later write fails with EPIPE.
    child.stderr.once('data', () => child.stderr.destroy());
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(stdout).toBe('alive 20000\n');
    expect(code).toBe(0);
  });
});

describe('LineWriter batches and bound', () => {
  let dir = '';
  let fd = -1;
  let file = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'line-writer-'));
    file = join(dir, 'log');
    fd = openSync(file, 'w');
  });
  afterEach(async () => {
    await sleep(50); // a write still in flight finishes before its fd closes
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a batch batchMs after its first line, not line by line', async () => {
    const writer = new LineWriter(fd, { batchMs: 40 });
    writer.write('a\n');
    writer.write('b\n');
    await sleep(5);
    expect(readFileSync(file, 'utf8')).toBe('');
    writer.write('c\n');
    await sleep(100);
    expect(readFileSync(file, 'utf8')).toBe('a\nb\nc\n');
  });

  it('writes at once when batchBytes are queued', async () => {
    const writer = new LineWriter(fd, { batchMs: 60_000, batchBytes: 100 });
    for (let i = 0; i < 10; i++) writer.write(`${String(i).padStart(19, '.')}\n`);
    await sleep(50);
    expect(readFileSync(file, 'utf8').split('\n')).toHaveLength(11);
  });

  it('reuses a written buffer for later batches without mixing their bytes; a line stays whole', async () => {
    const writer = new LineWriter(fd, { batchMs: 5 });
    const expected: string[] = [];
    for (let batch = 0; batch < 4; batch++) {
      // Over a buffer's worth (64 KiB) per batch, with multi-byte characters on odd batches,
      // so some lines meet the end of a buffer.
      for (let i = 0; i < 2000; i++) {
        const tail = batch % 2 ? 'ü€'.repeat(8) : 'x'.repeat(24);
        const line = `batch ${batch} line ${i} ${tail}`;
        expected.push(line);
        writer.write(`${line}\n`);
      }
      await sleep(60);
    }
    expect(readFileSync(file, 'utf8').trimEnd().split('\n')).toEqual(expected);
  });

  it('a line is given room whole: it never runs past the end of a buffer', async () => {
    const writer = new LineWriter(fd, { batchMs: 5 });
    // A third of a 64 KiB buffer, then a line of 60,003 bytes: only a new buffer holds it.
    const first = `${'a'.repeat(21_799)}\n`;
    const second = `h${'€'.repeat(20_000)}\n`;
    writer.write(first);
    writer.write(second);
    await sleep(60);
    expect(readFileSync(file, 'utf8')).toBe(`${first}${second}`);
  });

  it('drops lines past its bound, then says how many', async () => {
    const writer = new LineWriter(fd, { maxQueuedBytes: 40, batchMs: 10 });
    expect(writer.write('first line goes out\n')).toBe(true);
    expect(writer.write('queued: 12\n')).toBe(true);
    expect(writer.write('queued too: 16\n')).toBe(false);
    expect(writer.write('no room left\n')).toBe(false);
    await sleep(60);
    expect(writer.write('after\n')).toBe(true);
    await sleep(60);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.slice(0, 2)).toEqual(['first line goes out', 'queued: 12']);
    expect(JSON.parse(lines[2])).toMatchObject({ level: 'warn', dropped: 2 });
    expect(lines[3]).toBe('after');
  });

  /** Lines `later <item> <time>` for writeLater, counting the lines it encoded. */
  function laterLines(): LineEncoder<number> & { encoded: number } {
    return {
      encoded: 0,
      maxBytes: () => 40,
      encode(buf, at, item, timeMs) {
        this.encoded++;
        return at + buf.write(`later ${item} ${timeMs}\n`, at);
      },
    };
  }

  it('writeLater encodes a line when its batch goes out, in order with written lines, timed when it was queued', async () => {
    const writer = new LineWriter(fd, { batchMs: 40 });
    const later = laterLines();
    const before = Date.now();
    writer.writeLater(later, 1);
    writer.writeLater(later, 2);
    const after = Date.now();
    await sleep(5);
    expect(later.encoded).toBe(0);
    writer.write('now 3\n');
    writer.writeLater(later, 4);
    await sleep(100);
    expect(later.encoded).toBe(3);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.map((line) => line.split(' ').slice(0, 2).join(' '))).toEqual(['later 1', 'later 2', 'now 3', 'later 4']);
    for (const line of [lines[0], lines[1]]) {
      const time = Number(line.split(' ')[2]);
      expect(time).toBeGreaterThanOrEqual(before);
      expect(time).toBeLessThanOrEqual(after);
    }
  });

  it('an encoder that throws or runs past its room loses its own line, not the batch or the writer', async () => {
    const writer = new LineWriter(fd, { batchMs: 5 });
    const later = laterLines();
    const throws: LineEncoder<number> = {
      maxBytes: () => 40,
      encode: () => {
        throw new Error('bug');
      },
    };
    const overruns: LineEncoder<number> = { maxBytes: () => 4, encode: (buf, at) => at + buf.write('far too long\n', at) };
    writer.writeLater(throws, 0);
    await sleep(30);
    writer.writeLater(later, 1);
    writer.writeLater(throws, 2);
    writer.writeLater(overruns, 3);
    writer.writeLater(later, 4);
    await sleep(30);
    writer.write('still writing\n');
    writer.flushSync();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.map((line) => line.split(' ').slice(0, 2).join(' '))).toEqual(['later 1', 'later 4', 'still writing']);
  });

  it('while a batch is being written, lines queued for later are encoded a batch at a time rather than kept', async () => {
    const writer = new LineWriter(fd, { batchBytes: 1024, batchMs: 60_000 });
    const later = laterLines();
    // Two lines count for 1,024 bytes: the batch goes out at once, and stays in flight until this test awaits.
    writer.writeLater(later, 1);
    writer.writeLater(later, 2);
    expect(later.encoded).toBe(2);
    writer.writeLater(later, 3);
    expect(later.encoded).toBe(2);
    writer.writeLater(later, 4);
    expect(later.encoded).toBe(4);
    await sleep(30);
    writer.flushSync();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.map((line) => line.split(' ')[1])).toEqual(['1', '2', '3', '4']);
  });

  it('drops lines queued for later past its bound, then says how many', async () => {
    const writer = new LineWriter(fd, { maxQueuedBytes: 1100, batchMs: 10 });
    const later = laterLines();
    // Until it is encoded a line queued for later counts for 512 bytes.
    expect(writer.writeLater(later, 1)).toBe(true);
    expect(writer.writeLater(later, 2)).toBe(true);
    expect(writer.writeLater(later, 3)).toBe(false);
    await sleep(60);
    expect(writer.writeLater(later, 4)).toBe(true);
    writer.flushSync();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.slice(0, 2).map((line) => line.split(' ')[1])).toEqual(['1', '2']);
    expect(JSON.parse(lines[2])).toMatchObject({ level: 'warn', dropped: 1 });
    expect(lines[3]).toMatch(/^later 4 /);
  });

  it('flushSync writes what is queued, synchronously, lines queued for later too', () => {
    const writer = new LineWriter(fd, { batchMs: 60_000 });
    writer.write('a\n');
    writer.write('b\n');
    writer.writeLater({ maxBytes: () => 2, encode: (buf, at) => at + buf.write('c\n', at) }, null);
    writer.flushSync();
    expect(readFileSync(file, 'utf8')).toBe('a\nb\nc\n');
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
