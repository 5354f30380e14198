/**
 * A real headless Chromium for page tests: Debian's /usr/bin/chromium (apt package
 * `chromium`, installed by .ci/run) driven by playwright-core, which never downloads a
 * browser of its own. Each browser gets a fresh, empty profile that is deleted on close.
 * Imported as `@ai-lb/testkit/start-browser.ts`, not from the index: only page tests pay
 * for loading playwright.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Flags that work as root in a container without a GPU: no sandbox (root cannot have
 * one), and none of Chromium's own network traffic (update checks, sync, QUIC probes), so
 * a test talks only to the loopback servers it started.
 */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;

export interface StartedBrowser {
  context: BrowserContext;
  newPage(options?: { width?: number; height?: number }): Promise<Page>;
  close(): Promise<void>;
}

/** Whether the browser is there (tests skip off CI without it; on CI .ci/run installs it). */
export function hasChromium(): boolean {
  return existsSync(CHROMIUM_PATH);
}

export async function startBrowser(options: { executablePath?: string } = {}): Promise<StartedBrowser> {
  const executablePath = options.executablePath ?? CHROMIUM_PATH;
  if (!existsSync(executablePath)) throw new Error(`no Chromium at ${executablePath}: apt-get install chromium, or set CHROMIUM_PATH`);
  const profile = mkdtempSync(join(tmpdir(), 'ai-lb-chromium-'));
  let context: BrowserContext;
  try {
    // A persistent context is how playwright takes a --user-data-dir of our choosing.
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: [...CHROMIUM_FLAGS],
      viewport: { width: 1280, height: 900 },
      timeout: 30_000,
    });
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
  return {
    context,
    async newPage({ width, height } = {}) {
      const page = await context.newPage();
      // Below vitest's 30 s test timeout, so a missing element fails with playwright's message.
      page.setDefaultTimeout(15_000);
      if (width && height) await page.setViewportSize({ width, height });
      return page;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
