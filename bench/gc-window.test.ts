import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, test } from 'vitest';
import { closeGcWindow, GC_PROBE_ARGS, openGcWindow } from './gc-window.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

// Allocates steadily; 300 ms after 'go' (the window is open by then) it blocks its loop for 60 ms once.
const CHILD = `
  let keep = [];
  setInterval(() => { keep = Array.from({ length: 2000 }, (_, i) => ({ i })); }, 2);
  process.stdin.once('data', () => setTimeout(() => { const t = Date.now(); while (Date.now() - t < 60); }, 300));
  console.log('ready');
`;

describe('the probe window (bench/gc-probe.mjs in a real process)', () => {
  test('counts the garbage and the event-loop stall that happened inside it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ai-lb-gc-test-'));
    dirs.push(dir);
    const child = spawn(process.execPath, [...GC_PROBE_ARGS, '-e', CHILD], {
      env: { ...process.env, AI_LB_GC_PROBE_DIR: dir },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      await once(child.stdout!, 'data');
      openGcWindow(child.pid!);
      child.stdin!.write('go\n');
      await sleep(700);
      process.env.AI_LB_GC_PROBE_DIR = dir;
      const counted = await closeGcWindow(child.pid!, 1000);
      expect(counted.allocatedKb).toBeGreaterThan(1);
      expect(counted.loopDelayMaxMs).toBeGreaterThanOrEqual(50);
      expect(counted.loopDelayMaxMs).toBeLessThan(1000);
      expect(counted.loopDelayP99Ms).toBeLessThanOrEqual(counted.loopDelayMaxMs);
    } finally {
      child.kill();
      delete process.env.AI_LB_GC_PROBE_DIR;
    }
  });
});
