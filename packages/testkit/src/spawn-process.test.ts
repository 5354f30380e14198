/** A child's stderr in a file (stderrToFile): its tail is readable, bounded, and the file goes with the child. */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { spawnTsProcess } from './spawn-process.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const dir = mkdtempSync(join(tmpdir(), 'ai-lb-spawn-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Logs argv[2] numbered lines, says it is ready, then logs 2,000 more every 50 ms.
const LOGGER = join(dir, 'logger.mjs');
writeFileSync(
  LOGGER,
  `const lines = Number(process.argv[2]);
for (let i = 0; i < lines; i++) process.stderr.write('line ' + i + ' ' + 'x'.repeat(80) + '\\n');
process.stdout.write(JSON.stringify({ pid: process.pid }) + '\\n');
let n = lines;
setInterval(() => { for (let k = 0; k < 2000; k++) process.stderr.write('line ' + n++ + ' ' + 'x'.repeat(80) + '\\n'); }, 50);
`,
);

const stderrDirs = () => readdirSync(tmpdir()).filter((name) => name.startsWith('ai-lb-stderr-'));

test('stderrToFile: stderr() is the last keepBytes of what the child wrote, and the file is cut back under it', async () => {
  const before = new Set(stderrDirs());
  const proc = await spawnTsProcess<{ pid: number }>(LOGGER, ['3000'], { tsx: false, stderrToFile: { keepBytes: 4096 } });
  const ours = stderrDirs().filter((name) => !before.has(name));
  expect(ours).toHaveLength(1);
  const file = join(tmpdir(), ours[0]!, 'stderr.log');
  try {
    const sizes: number[] = [];
    let newest = -1;
    const deadline = Date.now() + 20_000;
    // ≈ 3.6 MB of log a second: 200,000 lines are 18 MB, which the file must not keep.
    while (newest < 200_000 && Date.now() < deadline) {
      await sleep(100);
      const tail = proc.stderr();
      expect(tail.length).toBeLessThanOrEqual(4096);
      const numbers = [...tail.matchAll(/line (\d+) /g)].map((m) => Number(m[1]));
      expect(numbers.length).toBeGreaterThan(10);
      for (let i = 1; i < numbers.length; i++) expect(numbers[i]).toBeGreaterThan(numbers[i - 1]!);
      expect(numbers.at(-1)).toBeGreaterThanOrEqual(Math.max(newest, 2999));
      newest = numbers.at(-1)!;
      sizes.push(statSync(file).size);
    }
    expect(newest).toBeGreaterThanOrEqual(200_000);
    expect(Math.max(...sizes)).toBeLessThan(12 * 1024 * 1024);
    expect(sizes.some((size, i) => i > 0 && size < sizes[i - 1]!)).toBe(true);
  } finally {
    await proc.stop();
  }
  expect(existsSync(join(tmpdir(), ours[0]!))).toBe(false);
  expect(proc.stderr()).toMatch(/line \d+ x+\n$/);
}, 30_000);
