/**
 * The dashboard end to end on the monitor's side, in a real headless Chromium: a real
 * monitor scans real fake-server processes (llama.cpp and vLLM kinds, plus an ai-lb
 * gateway it must skip) into a real store and serves the page on its own port, as
 * `pnpm start:monitor` does. An upstream process is killed: the next scan marks it
 * unhealthy, and the page says so.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { GATEWAY_MARK_HEADER, MemoryStateStore, type DashboardState } from '@ai-lb/shared';
import { startFakeLlmServer, type FakeLlmProcess } from '@ai-lb/testkit';
import { hasChromium, startBrowser, type StartedBrowser } from '@ai-lb/testkit/start-browser.ts';
import { startMonitor, type MonitorHandle } from './start-monitor.ts';
import { testConfig } from './testing/monitor-test-env.ts';

const ARTIFACTS = fileURLToPath(new URL('../../../artifacts/', import.meta.url));

describe.runIf(hasChromium() || process.env.CI === 'true')('the dashboard on a real monitor, in Chromium', () => {
  const fakes: Record<'llamacpp' | 'vllm' | 'gateway', FakeLlmProcess> = {} as never;
  let store: MemoryStateStore;
  let monitor: MonitorHandle;
  let url: string;
  let browser: StartedBrowser;

  beforeAll(async () => {
    [fakes.llamacpp, fakes.vllm, fakes.gateway] = await Promise.all([
      startFakeLlmServer({ kind: 'llamacpp', models: ['llama-3.1-8b.gguf'], slots: 2 }),
      startFakeLlmServer({ kind: 'vllm', models: ['Qwen/Qwen3-0.6B'] }),
      startFakeLlmServer({ kind: 'openai', models: ['auto'], headers: [`${GATEWAY_MARK_HEADER}: 1`] }),
    ]);
    // After the upstreams: Chromium's start-up and three tsx processes at once can starve
    // a fake's 15 s ready timeout on two busy cores.
    browser = await startBrowser();
    store = new MemoryStateStore();
    const config = testConfig({
      SCAN_HOSTS: Object.values(fakes)
        .map((f) => f.node)
        .join(','),
      // Generous: beside Chromium and three fakes on two busy cores a 1 s probe can time out.
      PROBE_TIMEOUT_MS: '5000',
      MONITOR_PORT: '0',
    });
    monitor = await startMonitor({ config, store, schedule: false });
    await monitor.scanOnce();
    await monitor.pollLoadsOnce();
    url = `http://127.0.0.1:${monitor.port}`;
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await monitor?.stop();
    await store?.close();
    await Promise.all(Object.values(fakes).map((f) => f?.stop()));
  });

  test('shows the nodes it found and the gateway it skipped; a killed upstream turns unhealthy on the next scan', async () => {
    const page = await browser.newPage();
    await page.goto(`${url}/dashboard`);
    const llamacpp = page.locator(`#fleet-table tr[data-node="${fakes.llamacpp.node}"]`);
    await llamacpp.waitFor();
    expect(await llamacpp.getAttribute('data-healthy')).toBe('true');
    expect(await llamacpp.textContent()).toContain('llamacpp');
    expect(await llamacpp.textContent()).toContain('0 / 2'); // the slots llama.cpp reports
    const vllmRow = page.locator(`#fleet-table tr[data-node="${fakes.vllm.node}"]`);
    expect(await vllmRow.getAttribute('data-healthy')).toBe('true');
    // The engine's own load, as the monitor's poller read it from vLLM's /metrics.
    expect(await vllmRow.textContent()).toContain('3 running');
    expect(await page.locator(`#fleet-table tr[data-node="${fakes.gateway.node}"]`).count()).toBe(0);
    const scan = await page.locator('#scan').textContent();
    expect(scan).toContain(fakes.gateway.node);
    expect(scan).toContain('an ai-lb gateway');
    // The monitor routes nothing: the page says so instead of drawing empty charts.
    expect(await page.locator('#traffic-note').textContent()).toContain('routes no requests');
    expect(await page.locator('#charts').isHidden()).toBe(true);

    await fakes.vllm.stop();
    await monitor.scanOnce();
    const vllm = page.locator(`#fleet-table tr[data-node="${fakes.vllm.node}"][data-healthy="false"]`);
    await vllm.waitFor({ timeout: 5000 });
    expect(await vllm.textContent()).toContain('unhealthy');
    expect(await vllm.textContent()).toMatch(/refused|ECONNREFUSED/);
    await page.waitForFunction(
      (node) => document.querySelector('#changes')?.textContent?.includes(`${node} became unhealthy`),
      fakes.vllm.node,
    );
    expect(await page.getByRole('status').textContent()).toMatch(/1 of 2 nodes healthy/);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-monitor.png`, fullPage: true });
    await page.close();
  });

  test('the data is behind GATEWAY_API_KEYS on the monitor too; the page itself is open', async () => {
    const key = 'monitor-dashboard-key-0123456789';
    const keyed = await startMonitor({
      config: testConfig({ SCAN_HOSTS: fakes.llamacpp.node, MONITOR_PORT: '0', GATEWAY_API_KEYS: key }),
      store,
      schedule: false,
    });
    try {
      const base = `http://127.0.0.1:${keyed.port}`;
      expect((await fetch(`${base}/dashboard`)).status).toBe(200);
      const refused = await fetch(`${base}/dashboard/state`);
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
      const state = await fetch(`${base}/dashboard/state`, { headers: { authorization: `Bearer ${key}` } });
      expect(state.status).toBe(200);
      const body = (await state.json()) as DashboardState;
      expect(body).toMatchObject({ service: 'monitor', traffic: null, scan: null });
      expect(body.fleet.map((n) => n.node)).toContain(fakes.llamacpp.node);
      expect((await fetch(`${base}/nope`)).status).toBe(404);
    } finally {
      await keyed.stop();
    }
  });
});
