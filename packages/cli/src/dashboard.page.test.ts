/**
 * The fleet dashboard as a person meets it: `pnpm start` (gateway + monitor, one real
 * process) in front of three fake LLM servers of different kinds (real processes), the page
 * opened in a real headless Chromium on the gateway's port with GATEWAY_API_KEYS set. It asks
 * for the key, shows every node and the traffic the gateway routed, and when an upstream
 * process is killed the monitor's next scan marks it and the page shows it unhealthy.
 * Screenshots go to artifacts/ (gitignored).
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnTsProcess, startFakeLlmServer, waitUntil, type FakeLlmProcess, type SpawnedProcess } from '@ai-lb/testkit';
import { hasChromium, startBrowser, type StartedBrowser } from '@ai-lb/testkit/start-browser.ts';
import { ENTRIES } from './testing/cli-processes.ts';

const ARTIFACTS = fileURLToPath(new URL('../../../artifacts/', import.meta.url));
const KEY = 'dashboard-page-key-0123456789';

type Ready = { port: number; pid: number; monitorPort: number };

describe.runIf(hasChromium() || process.env.CI === 'true')('the dashboard on a real gateway (pnpm start), in Chromium', () => {
  const fakes: Record<'ollama' | 'llamacpp' | 'vllm', FakeLlmProcess> = {} as never;
  let service: SpawnedProcess<Ready>;
  let browser: StartedBrowser;
  let base: string;

  beforeAll(async () => {
    [fakes.ollama, fakes.llamacpp, fakes.vllm] = await Promise.all([
      startFakeLlmServer({ kind: 'ollama', models: ['llama3.2:3b'] }),
      startFakeLlmServer({ kind: 'llamacpp', models: ['qwen2.5-7b-instruct.gguf'], slots: 4 }),
      startFakeLlmServer({ kind: 'vllm', models: ['Qwen/Qwen3-0.6B'] }),
    ]);
    service = await spawnTsProcess<Ready>(ENTRIES.start, [], {
      env: {
        LOAD_BALANCER_PORT: '0',
        LOAD_BALANCER_HOST: '127.0.0.1',
        MONITOR_PORT: '0',
        REDIS_URL: '',
        REDIS_HOST: '',
        SCAN_HOSTS: Object.values(fakes)
          .map((f) => f.node)
          .join(','),
        SCAN_INTERVAL: '1',
        GATEWAY_API_KEYS: KEY,
        LOG_LEVEL: 'warn',
      },
      readyTimeoutMs: 30_000,
    });
    base = `http://127.0.0.1:${service.ready.port}`;
    // Chromium after the processes: its start-up beside four tsx processes starves them on two cores.
    browser = await startBrowser();
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await service?.stop();
    await Promise.all(Object.values(fakes).map((f) => f?.stop()));
  });

  const chat = (model: string, stream: boolean) =>
    fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
    });

  test('asks for the key, shows every node and the routed traffic; a killed upstream turns unhealthy', async () => {
    const models = ['llama3.2:3b', 'qwen2.5-7b-instruct.gguf', 'Qwen/Qwen3-0.6B'];
    await waitUntil(
      async () => {
        const res = await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } });
        const ids = ((await res.json()) as { data: Array<{ id: string }> }).data.map((m) => m.id);
        return models.every((m) => ids.includes(m));
      },
      { timeoutMs: 15_000, what: 'the monitor found all three servers' },
    );
    for (const model of models) {
      for (const stream of [false, true, false]) {
        const res = await chat(model, stream);
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
    }

    const page = await browser.newPage();
    await page.goto(`${base}/dashboard`);
    await page.locator('#key-input').waitFor();
    await page.fill('#key-input', KEY);
    await page.press('#key-input', 'Enter');
    for (const fake of Object.values(fakes)) {
      await page.locator(`#fleet-table tr[data-node="${fake.node}"][data-healthy="true"]`).waitFor();
    }
    const llamacpp = await page.locator(`#fleet-table tr[data-node="${fakes.llamacpp.node}"]`).textContent();
    expect(llamacpp).toContain('llamacpp');
    expect(llamacpp).toContain('0 / 4');
    expect(await page.getByRole('status').textContent()).toMatch(/3 of 3 nodes healthy/);
    // The gateway's own traffic: charts drawn, each model's last minute counted.
    expect(await page.locator('#charts').isVisible()).toBe(true);
    const qwen = page.locator('#models-table tr[data-model="Qwen/Qwen3-0.6B"] td');
    expect(await qwen.nth(2).textContent()).toBe('0'); // nobody waiting for a slot
    expect(await qwen.nth(5).textContent()).toMatch(/\d+ ms \/ \d+ ms/); // latency p50 / p99
    expect(await qwen.nth(6).textContent()).toMatch(/\d+ ms \/ \d+ ms/); // TTFT of the stream
    // The scan of the monitor beside the gateway.
    expect(await page.locator('#scan').textContent()).toMatch(/3/);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-gateway.png`, fullPage: true });

    await fakes.vllm.stop();
    const down = page.locator(`#fleet-table tr[data-node="${fakes.vllm.node}"][data-healthy="false"]`);
    await down.waitFor({ timeout: 15_000 });
    expect(await down.textContent()).toContain('unhealthy');
    await page.waitForFunction(
      (node) => document.querySelector('#changes')?.textContent?.includes(`${node} became unhealthy`),
      fakes.vllm.node,
    );
    expect(await page.getByRole('status').textContent()).toMatch(/2 of 3 nodes healthy/);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-gateway-node-down.png`, fullPage: true });
    await page.close();
  }, 60_000);
});
