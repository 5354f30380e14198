/**
 * The dashboard page in a real headless Chromium (Debian's, driven by playwright-core),
 * against a small HTTP server in this test that mounts createDashboardHandler (as the
 * gateway and the monitor do) with a scripted DashboardState sequence and API key. What a
 * person sees: every node, a node turning unhealthy, the key prompt on 401, keyboard reach,
 * a phone-width layout.
 * Screenshots go to artifacts/ (gitignored).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Page } from 'playwright-core';
import { hasChromium, startBrowser, type StartedBrowser } from '@ai-lb/testkit/start-browser.ts';
import { buildDashboardState, createDashboardHandler, TrafficRecorder, type DashboardState, type NodeState } from '../src/index.ts';

const ARTIFACTS = fileURLToPath(new URL('../../../artifacts/', import.meta.url));
const NODES = ['127.0.0.1:11434', '127.0.0.1:8080', '127.0.0.1:30000'];

function nodeRecord(node: string, over: Partial<NodeState>): NodeState {
  const at = node.lastIndexOf(':');
  const now = Date.now();
  return {
    node,
    host: node.slice(0, at),
    port: Number(node.slice(at + 1)),
    kind: 'openai',
    healthy: true,
    models: [],
    loadedModels: [],
    maxconn: 0,
    capacitySource: 'default',
    detectedMaxconn: null,
    latencyMs: 4,
    lastSeenMs: now - 1500,
    checkedAtMs: now - 1500,
    error: null,
    serverLoad: null,
    ...over,
  };
}

/** Fifteen minutes of made-up traffic, so the charts have something to draw. */
function trafficFixture(): TrafficRecorder {
  const time = { now: Date.now() - 15 * 60_000 };
  const recorder = new TrafficRecorder({ clock: () => time.now });
  recorder.setKnownLabels(['llama3:latest', 'qwen2.5-7b', 'Qwen/Qwen3-0.6B'], NODES);
  for (let step = 0; step < 90; step++) {
    time.now += 10_000;
    // A quiet spell with one busy bucket in it: the latency series has gaps and a lone value.
    if (step >= 40 && step <= 44 && step !== 42) continue;
    const load = 5 + Math.round(4 * Math.sin(step / 8) + 4);
    for (let i = 0; i < load; i++) {
      recorder.record({
        model: i % 2 ? 'llama3:latest' : 'Qwen/Qwen3-0.6B',
        node: i % 2 ? NODES[0] : NODES[2],
        status: i === 0 && step % 7 === 0 ? 502 : i === 1 && step % 5 === 0 ? 429 : 200,
        durationMs: 200 + ((i * 37) % 400),
        ttftMs: 40 + ((i * 13) % 80),
        outputTokens: 60,
        failovers: step % 9 === 0 && i === 2 ? 1 : 0,
        queueWaitMs: step % 4 === 0 && i < 2 ? 300 : null,
      });
    }
  }
  recorder.recordAttemptError(NODES[1], 'UND_ERR_HEADERS_TIMEOUT: no response headers in 60 s');
  time.now = Date.now();
  return recorder;
}

/** The scripted fleet: phase 'steady' has every node healthy, 'degraded' has the llama.cpp node down. */
function scriptedState(phase: 'steady' | 'degraded', traffic: TrafficRecorder): DashboardState {
  const now = Date.now();
  const down = phase === 'degraded';
  return buildDashboardState({
    service: 'gateway',
    nowMs: now,
    refreshMs: 250,
    nodes: [
      nodeRecord(NODES[0], { kind: 'ollama', models: ['llama3:latest', 'qwen2.5-7b'], loadedModels: ['llama3:latest'], maxconn: 4 }),
      nodeRecord(NODES[1], {
        kind: 'llamacpp',
        models: ['qwen2.5-7b'],
        maxconn: 2,
        capacitySource: 'detected',
        healthy: !down,
        error: down ? 'refused: ECONNREFUSED' : null,
        checkedAtMs: down ? now - 300 : now - 1500,
      }),
      nodeRecord(NODES[2], { kind: 'vllm', models: ['Qwen/Qwen3-0.6B'], serverLoad: { running: 3, waiting: 1 }, maxconn: 8 }),
    ],
    circuits: down ? { [NODES[1]]: { state: 'open', failures: 3, openUntilMs: now + 30_000 } } : {},
    inflight: { [NODES[0]]: 3, [NODES[2]]: 5 },
    queues: { 'qwen2.5-7b': down ? 2 : 0 },
    traffic,
    scan: {
      startedAtMs: now - 4000,
      durationMs: 640,
      targets: 10,
      outcomes: { node: 3, closed: 4, gateway: 1, failed: 2 },
      rejected: [
        { node: '127.0.0.1:8000', reason: 'gateway', error: 'answers as an ai-lb gateway' },
        { node: '127.0.0.1:1234', reason: 'http_status', error: 'GET /v1/models answered 404' },
      ],
    },
  });
}

interface FakeAi {
  url: string;
  phase: 'steady' | 'degraded';
  /** When set, /dashboard/state wants `Bearer <key>`. */
  key: string | null;
  authorizations: Array<string | null>;
  close(): Promise<void>;
}

async function startFakeAi(): Promise<FakeAi> {
  const traffic = trafficFixture();
  const fake: Omit<FakeAi, 'url' | 'close'> = { phase: 'steady', key: null, authorizations: [] };
  // The same handler the gateway and the monitor mount; only the state and the key are scripted.
  const handler = createDashboardHandler({
    state: () => scriptedState(fake.phase, traffic),
    authorize: (authorization) => {
      fake.authorizations.push(authorization ?? null);
      return fake.key === null || authorization === `Bearer ${fake.key}`;
    },
  });
  const server: Server = createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(fake, {
    url,
    // The browser may keep its connections to the page's server open after the page closed:
    // close them too, or server.close() waits for them and the hook runs out of time.
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}

/** Console errors and CSP violations: the page must produce none. */
function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && !/401 \(Unauthorized\)/.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  return problems;
}

describe.runIf(hasChromium() || process.env.CI === 'true')('the dashboard page in Chromium', () => {
  let browser: StartedBrowser;
  let fake: FakeAi;

  beforeAll(async () => {
    browser = await startBrowser();
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    await fake?.close();
  });

  test('shows every node, every model, the charts and the scan, without a console error or CSP violation', async () => {
    fake = await startFakeAi();
    const page = await browser.newPage();
    const problems = watchProblems(page);
    await page.goto(`${fake.url}/dashboard`);
    await page.waitForSelector(`tr[data-node="${NODES[2]}"]`);

    for (const node of NODES) {
      const row = page.locator(`#fleet-table tr[data-node="${node}"]`);
      expect(await row.getAttribute('data-healthy')).toBe('true');
      expect(await row.locator('th').textContent()).toBe(node);
    }
    const ollama = await page.locator(`tr[data-node="${NODES[0]}"]`).textContent();
    expect(ollama).toContain('ollama');
    expect(ollama).toMatch(/llama3:latest\s*loaded/);
    expect(ollama).toContain('3 / 4');
    expect(await page.locator(`tr[data-node="${NODES[2]}"]`).textContent()).toContain('3 running, 1 waiting');
    expect(await page.locator(`tr[data-node="${NODES[1]}"]`).textContent()).toContain('UND_ERR_HEADERS_TIMEOUT');
    expect(await page.locator('#models-table tbody tr').count()).toBe(3);
    expect(await page.locator('#models-table tr[data-model="qwen2.5-7b"]').textContent()).toContain(NODES[1]);

    // Each chart has a polyline per series and a text alternative with real numbers.
    expect(await page.locator('#charts figure').count()).toBe(5);
    expect(await page.locator('#chart-status polyline').count()).toBe(3);
    // Latency has gaps where no request ended: the lines break there, a lone value is a dot.
    expect(await page.locator('#chart-latency polyline').count()).toBe(4);
    expect(await page.locator('#chart-latency circle.dot').count()).toBe(2);
    expect(await page.locator('#chart-requests-desc').textContent()).toMatch(/requests\/s: now [\d.]+, peak [\d.]+/);
    const scan = await page.locator('#scan').textContent();
    expect(scan).toContain('127.0.0.1:8000');
    expect(scan).toContain('an ai-lb gateway');
    expect(scan).toContain('not an LLM server');

    // Landmarks and named tables, as assistive technology finds them.
    expect(await page.getByRole('banner').count()).toBe(1);
    expect(await page.getByRole('main').count()).toBe(1);
    expect(await page.getByRole('contentinfo').count()).toBe(1);
    expect(await page.getByRole('table', { name: /Every node/ }).count()).toBe(1);
    expect(await page.getByRole('table', { name: /Every model/ }).count()).toBe(1);
    expect(await page.getByRole('img', { name: /Requests per second/ }).count()).toBe(1);
    expect(await page.getByRole('status').textContent()).toMatch(/3 of 3 nodes healthy/);

    const shot = `${ARTIFACTS}dashboard.png`;
    await page.screenshot({ path: shot, fullPage: true });
    process.stdout.write(`dashboard screenshot: ${shot}\n`);
    expect(problems).toEqual([]);
    await page.close();
  });

  test('a node turning unhealthy: its row says so in words, and the change is announced', async () => {
    fake = await startFakeAi();
    const page = await browser.newPage();
    await page.goto(`${fake.url}/dashboard`);
    await page.waitForSelector(`tr[data-node="${NODES[1]}"][data-healthy="true"]`);
    const unchangedRow = await page.$(`tr[data-node="${NODES[0]}"]`);
    const statusChanges = await page.evaluate(() => {
      const seen: string[] = [];
      new MutationObserver(() => seen.push(document.getElementById('status')!.textContent ?? '')).observe(
        document.getElementById('status')!,
        {
          childList: true,
          characterData: true,
          subtree: true,
        },
      );
      (window as unknown as { statusChanges: string[] }).statusChanges = seen;
      return seen.length;
    });
    fake.phase = 'degraded';
    await page.waitForSelector(`tr[data-node="${NODES[1]}"][data-healthy="false"]`, { timeout: 5000 });
    const row = await page.locator(`tr[data-node="${NODES[1]}"]`).textContent();
    expect(row).toContain('unhealthy');
    expect(row).toMatch(/open until/);
    expect(row).toContain('ECONNREFUSED');
    await page.waitForFunction(() => document.querySelector('#changes')?.textContent?.includes('became unhealthy'));
    const log = page.getByRole('log');
    expect(await log.getAttribute('aria-live')).toBe('polite');
    expect(await log.textContent()).toContain(`${NODES[1]} became unhealthy`);
    expect(await log.textContent()).toContain(`${NODES[1]} circuit open`);
    expect(await page.getByRole('status').textContent()).toMatch(/2 of 3 nodes healthy/);
    // The live status spoke once (the health count changed), not on every poll; the row of
    // a node that did not change is the same element (updated in place, not rebuilt).
    const updatedAt = await page.textContent('#updated');
    await page.waitForFunction((before) => document.getElementById('updated')?.textContent !== before, updatedAt); // polled again
    const spoken = await page.evaluate(() => (window as unknown as { statusChanges: string[] }).statusChanges);
    expect(statusChanges).toBe(0);
    expect(spoken).toEqual(['2 of 3 nodes healthy.']);
    expect(await unchangedRow!.evaluate((row) => row.isConnected)).toBe(true);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-unhealthy.png`, fullPage: true });
    await page.close();
  });

  test('on 401 the page asks for a key, sends it as a bearer, says when it is wrong, and shows no data without it', async () => {
    fake = await startFakeAi();
    fake.key = 'sk-dash-right';
    const page = await browser.newPage();
    const problems = watchProblems(page);
    await page.goto(`${fake.url}/dashboard`);
    await page.waitForSelector('#auth:not([hidden])');
    expect(await page.locator('#main').isHidden()).toBe(true);
    expect(await page.locator('#fleet-table tbody tr').count()).toBe(0);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('key-input');

    await page.fill('#key-input', 'sk-dash-wrong');
    await page.press('#key-input', 'Enter');
    await page.waitForFunction(() => document.querySelector('#auth-error')?.textContent?.includes('not accepted'));
    expect(fake.authorizations).toContain('Bearer sk-dash-wrong');

    await page.fill('#key-input', 'sk-dash-right');
    await page.click('#key-form button[type="submit"]');
    await page.waitForSelector(`tr[data-node="${NODES[0]}"]`);
    expect(await page.locator('#auth').isHidden()).toBe(true);
    expect(fake.authorizations.at(-1)).toBe('Bearer sk-dash-right');
    expect(await page.evaluate(() => sessionStorage.getItem('ai-lb-dashboard-key'))).toBe('sk-dash-right');

    // A reload in the same tab keeps the key; "forget" drops it and the prompt returns.
    await page.reload();
    await page.waitForSelector(`tr[data-node="${NODES[0]}"]`);
    await page.click('#forget-key');
    await page.waitForSelector('#auth:not([hidden])');
    expect(await page.evaluate(() => sessionStorage.getItem('ai-lb-dashboard-key'))).toBeNull();
    expect(await page.locator('#fleet-table tbody tr').count()).toBe(0); // removed, not just hidden
    expect(problems).toEqual([]);
    await page.close();
  });

  test('keyboard: Tab reaches the skip link, the controls and every scrolling table; focus is visible; Space pauses', async () => {
    fake = await startFakeAi();
    const page = await browser.newPage();
    await page.goto(`${fake.url}/dashboard`);
    await page.waitForSelector(`tr[data-node="${NODES[0]}"]`);
    const reached: string[] = [];
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab');
      reached.push(
        await page.evaluate(() => {
          const el = document.activeElement as HTMLElement | null;
          return el?.id || el?.getAttribute('aria-labelledby') || el?.textContent?.trim() || '';
        }),
      );
    }
    expect(reached.slice(0, 2)).toEqual(['Skip to the fleet', 'pause']);
    expect(reached).toEqual(expect.arrayContaining(['fleet-caption', 'models-caption', 'scan-caption']));

    // The focused control shows a focus ring (not colour alone: an outline).
    await page.focus('#pause');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Shift+Tab');
    expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).toBe('solid');
    await page.keyboard.press('Space');
    expect(await page.getAttribute('#pause', 'aria-pressed')).toBe('true');
    expect(await page.textContent('#pause')).toBe('Resume updates');
    await page.keyboard.press('Enter');
    expect(await page.getAttribute('#pause', 'aria-pressed')).toBe('false');

    // The skip link moves focus to the fleet.
    await page.focus('.skip-link');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('fleet');
    await page.close();
  });

  test('on a phone (390 px) the page does not scroll sideways: wide tables scroll inside their own region', async () => {
    fake = await startFakeAi();
    const page = await browser.newPage({ width: 390, height: 844 });
    await page.goto(`${fake.url}/dashboard`);
    await page.waitForSelector(`tr[data-node="${NODES[0]}"]`);
    const widths = await page.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      viewport: window.innerWidth,
      fleetScrolls: (() => {
        const wrap = document.querySelector('#fleet .table-wrap') as HTMLElement;
        return wrap.scrollWidth > wrap.clientWidth;
      })(),
    }));
    expect(widths.page).toBeLessThanOrEqual(widths.viewport);
    expect(widths.fleetScrolls).toBe(true);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-phone.png`, fullPage: true });
    await page.close();
  });
});
