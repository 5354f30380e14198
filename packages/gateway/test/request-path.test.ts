/**
 * The request's path, measured rather than claimed: V8's precise coverage counts which
 * functions run while the gateway answers one non-stream chat request, and so which source
 * files of the gateway and shared packages the request crosses. docs/architecture.md lists
 * them; this keeps the list true and short.
 */
import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, test } from 'vitest';
import { createStateStore, loadConfig, type StateStore } from '@ai-lb/shared';
import { uniquePrefix, type FakeLlmProcess } from '@ai-lb/testkit';
import { createGateway, type Gateway } from '../src/create-gateway.ts';
import { chatBody, nodeState, testEnv, useFakeServers, type StoreKind } from '../src/testing/gateway-harness.ts';

let a: FakeLlmProcess;
useFakeServers(1, (servers) => ([a] = servers));

const ARCHITECTURE = fileURLToPath(new URL('../../../docs/architecture.md', import.meta.url));
const MAX_FILES = 15;

const opened: Array<{ gateway: Gateway; store: StateStore }> = [];
afterAll(async () => {
  for (const { gateway, store } of opened) {
    await gateway.close(100);
    await store.close();
  }
});

/** The files listed between the markers of a section of docs/architecture.md. */
function documentedFiles(kind: StoreKind): string[] {
  const text = readFileSync(ARCHITECTURE, 'utf8');
  const section = new RegExp(`<!-- request-path:${kind} -->([\\s\\S]*?)<!-- /request-path -->`).exec(text)?.[1] ?? '';
  return [...section.matchAll(/`(packages\/[^`]+\.ts)`/g)].map((m) => m[1]).sort();
}

async function filesCrossed(kind: StoreKind): Promise<string[]> {
  const config = loadConfig(testEnv(kind, uniquePrefix('path')));
  // As the services run it: the Redis replicas' store is the resilient one.
  const store = createStateStore(config, { resilient: kind === 'redis', forceRedis: kind === 'redis' });
  // No background refresh or report during the measured request: only the request's own work counts.
  const gateway = await createGateway({
    config,
    store,
    fleetRefreshMs: 3_600_000,
    reportIntervalMs: 3_600_000,
    dashboardDrainMs: 3_600_000,
  });
  opened.push({ gateway, store });
  const port = await gateway.listen(0, '127.0.0.1');
  await store.putNode(nodeState(a.node, ['m1']), 60_000);
  await gateway.refreshFleet();
  const send = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody('m1')),
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  };
  for (let i = 0; i < 5; i++) await send();
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: false });
    await session.post('Profiler.takePreciseCoverage'); // resets the counts
    await send();
    // The release after the answer runs on the next turns: let it finish.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const { result } = await session.post('Profiler.takePreciseCoverage');
    return result
      .filter((script) => /\/packages\/(gateway|shared)\/src\//.test(script.url) && !/\.test\.ts$|\/testing\//.test(script.url))
      .filter((script) => script.functions.some((fn) => fn.functionName !== '' && fn.ranges[0].count > 0))
      .map((script) => script.url.slice(script.url.indexOf('packages/')))
      .sort();
  } finally {
    session.disconnect();
  }
}

test.each(['memory', 'redis'] as const)(
  'a non-stream chat request (%s store) crosses the files docs/architecture.md lists, at most 15',
  async (kind) => {
    const crossed = await filesCrossed(kind);
    expect(crossed).toEqual(documentedFiles(kind));
    expect(crossed.length).toBeLessThanOrEqual(MAX_FILES);
  },
);
