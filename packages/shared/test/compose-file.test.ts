import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_SCHEMA, loadConfig } from '../src/index.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const compose = parse(readFileSync(`${root}docker-compose.yml`, 'utf8')) as {
  services: Record<string, { environment?: Record<string, string>; command?: string[]; build?: string; ports?: string[] }>;
};
const knownVariables = new Set(Object.values(CONFIG_SCHEMA).map((field) => field.env));

/** Compose's ${VAR:-default} as the container would see it with nothing set on the host. */
function withDefaults(environment: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(environment).map(([key, value]) => [key, String(value).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')]),
  );
}

describe('docker-compose.yml', () => {
  test.each(['gateway', 'monitor'])('%s sets only variables the config module reads, and valid values', (name) => {
    const service = compose.services[name];
    expect(service, `service ${name}`).toBeDefined();
    const environment = withDefaults(service.environment ?? {});
    const unknown = Object.keys(environment).filter((key) => !knownVariables.has(key));
    expect(unknown).toEqual([]);
    // Replicas share state only through Redis: a service without it would silently run alone.
    expect(environment.REDIS_URL ?? environment.REDIS_HOST).toBeTruthy();
    const config = loadConfig(environment);
    expect(config.redisConfigured).toBe(true);
  });

  test('the gateway scales: it publishes no host port of its own, the front does', () => {
    expect(compose.services.gateway.ports).toBeUndefined();
    expect(compose.services.front.ports?.[0]).toMatch(/:8000$/);
    // The image holds only what `pnpm build` bundles (scripts/build-bundles.ts, Dockerfile).
    expect(compose.services.gateway.command).toContain('dist/gateway.mjs');
    expect(compose.services.monitor.command).toContain('dist/monitor.mjs');
  });

  // CI installs Debian's docker-compose (no engine needed for `config`). Off CI, a machine
  // without it skips only this check; on CI a missing binary fails the test.
  const hasCompose = process.env.CI === 'true' || commandExists('docker-compose');
  test.runIf(hasCompose)('docker-compose config accepts the file', () => {
    execFileSync('docker-compose', ['-f', `${root}docker-compose.yml`, 'config', '-q'], { stdio: 'pipe' });
  });
});

function commandExists(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
