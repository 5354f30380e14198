/**
 * `pnpm inventory [--json] [--write]`: the monitor alone, once. Scans SCAN_HOSTS ×
 * SCAN_PORTS, polls the healthy nodes' engine load once (what engine-aware routing reads),
 * prints what it found and exits 0. Writes nothing unless --write (then through the same
 * StateStore the services use), so it works without Redis.
 */
import { parseArgs } from 'node:util';
import {
  createCapacityResolver,
  createLoadClient,
  createMonitorMetrics,
  createProbeClient,
  expandTargets,
  pollEngineLoads,
  runScan,
} from '@ai-lb/monitor';
import { ConfigError, createLogger, createStateStore, loadConfigOrExit, systemClock, type Config, type NodeState } from '@ai-lb/shared';
import { formatInventoryTable, inventoryJson, type EngineLoads } from './inventory-table.ts';

const USAGE = 'usage: pnpm inventory [--json] [--write]';

function fail(message: string, code: number, prefix = 'ai-lb inventory'): never {
  process.stderr.write(`${prefix}: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]) {
  let flags: { json?: boolean; write?: boolean; help?: boolean };
  try {
    flags = parseArgs({
      args: argv,
      options: { json: { type: 'boolean' }, write: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }).values;
  } catch (error) {
    fail(`${(error as Error).message}\n${USAGE}`, 2);
  }
  if (flags.help) {
    process.stdout.write(`${USAGE}\n  --json   print JSON instead of a table\n  --write  publish the result to the state store\n`);
    return;
  }
  const config = loadConfigOrExit();
  let targets: ReturnType<typeof expandTargets>;
  try {
    targets = expandTargets(config.scanHosts, config.scanPorts);
  } catch (error) {
    // Same one-line shape as every other configuration error (loadConfigOrExit).
    if (error instanceof ConfigError) fail(error.message, 1, 'ai-lb');
    throw error;
  }
  const log = createLogger({ level: config.logLevel, base: { service: 'inventory' } });
  const store = flags.write ? createStateStore(config, { log }) : undefined;
  const client = createProbeClient({ timeoutMs: config.probeTimeoutMs, apiKeys: config.nodeApiKeys });
  try {
    const report = await runScan({
      client,
      targets,
      store,
      concurrency: config.scanConcurrency,
      resolveCapacity: createCapacityResolver(config),
      metrics: createMonitorMetrics(),
      clock: systemClock,
      ttlMs: config.nodeTtlMs,
      // With --write, records outlive a dead monitor like the monitor's own (FLEET_STALE_LIMIT_SECS).
      keepMs: config.fleetStaleLimitMs,
      monitorId: `inventory:${process.pid}`,
    });
    const loads = await pollLoads(report.nodes, config);
    const out = flags.json
      ? `${JSON.stringify(inventoryJson(report, store !== undefined, loads), null, 2)}\n`
      : formatInventoryTable(report, loads);
    process.stdout.write(out);
  } catch (error) {
    process.exitCode = 1;
    process.stderr.write(`ai-lb inventory: could not write the state store: ${(error as Error).message}\n`);
  } finally {
    await client.close();
    await store?.close().catch(() => undefined);
  }
}

/** One engine load poll of the healthy nodes (kinds without a load endpoint are skipped), bounded by PROBE_TIMEOUT_MS per node. */
async function pollLoads(nodes: readonly NodeState[], config: Config): Promise<EngineLoads> {
  const client = createLoadClient({ timeoutMs: config.probeTimeoutMs, apiKeys: config.nodeApiKeys });
  try {
    return await pollEngineLoads(
      nodes.filter((n) => n.healthy),
      { client, timeoutMs: config.probeTimeoutMs, concurrency: 32, clock: systemClock },
    );
  } finally {
    await client.close();
  }
}

await main(process.argv.slice(2));
