import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_SCHEMA, loadConfig } from '../src/index.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
interface ComposeService {
  environment?: Record<string, string>;
  command?: string[];
  build?: string;
  ports?: string[];
  profiles?: string[];
  volumes?: string[];
}
const compose = parse(readFileSync(`${root}docker-compose.yml`, 'utf8')) as { services: Record<string, ComposeService> };
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

  test('the observability profile adds Prometheus and Grafana, and only under that profile', () => {
    const profiled = Object.entries(compose.services).filter(([, service]) => service.profiles !== undefined);
    expect(Object.fromEntries(profiled.map(([name, service]) => [name, service.profiles]))).toEqual({
      prometheus: ['observability'],
      grafana: ['observability'],
    });
  });

  test('Prometheus scrapes every gateway replica and the monitor by service name, on the ports they listen on', () => {
    const prometheus = compose.services.prometheus;
    const config = mountedFile(prometheus, '/etc/prometheus/prometheus.yml');
    const scrape = (parse(readFileSync(config, 'utf8')) as PrometheusConfig).scrape_configs;
    const targets = Object.fromEntries(scrape.map((job) => [job.job_name, job.dns_sd_configs?.[0]]));
    const gatewayPort = Number(withDefaults(compose.services.gateway.environment ?? {}).LOAD_BALANCER_PORT);
    const monitorPort = Number(withDefaults(compose.services.monitor.environment ?? {}).MONITOR_PORT);
    // DNS service discovery (one A record per replica), never a fixed list that --scale outgrows.
    expect(targets['ai-lb-gateway']).toMatchObject({ names: ['gateway'], type: 'A', port: gatewayPort });
    expect(targets['ai-lb-monitor']).toMatchObject({ names: ['monitor'], type: 'A', port: monitorPort });
  });

  test('Grafana gets the Prometheus data source and the ai-lb dashboard provisioned', () => {
    const grafana = compose.services.grafana;
    const provisioning = mountedFile(grafana, '/etc/grafana/provisioning');
    const dashboardFile = mountedFile(grafana, '/var/lib/grafana/dashboards/ai-lb.json');
    const datasources = parse(readFileSync(`${provisioning}/datasources/prometheus.yml`, 'utf8')) as {
      datasources: Array<{ type: string; url: string; uid: string }>;
    };
    expect(datasources.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    const providers = parse(readFileSync(`${provisioning}/dashboards/ai-lb.yml`, 'utf8')) as {
      providers: Array<{ options: { path: string } }>;
    };
    expect(providers.providers[0].options.path).toBe('/var/lib/grafana/dashboards');
    const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as {
      uid: string;
      panels: Array<{ type: string; targets?: unknown[] }>;
    };
    expect(dashboard.uid).toBe('ai-lb');
    expect(dashboard.panels.filter((p) => p.type !== 'row').every((p) => (p.targets?.length ?? 0) > 0)).toBe(true);
  });

  const hasPromtool = process.env.CI === 'true' || commandExists('promtool');
  test.runIf(hasPromtool)('promtool accepts the Prometheus config', () => {
    execFileSync('promtool', ['check', 'config', `${root}deploy/prometheus/prometheus.yml`], { stdio: 'pipe' });
  });

  // CI installs Debian's docker-compose (no engine needed for `config`). Off CI, a machine
  // without it skips only this check; on CI a missing binary fails the test.
  const hasCompose = process.env.CI === 'true' || commandExists('docker-compose');
  test.runIf(hasCompose)('docker-compose config accepts the file, with and without the observability profile', () => {
    execFileSync('docker-compose', ['-f', `${root}docker-compose.yml`, 'config', '-q'], { stdio: 'pipe' });
    execFileSync('docker-compose', ['-f', `${root}docker-compose.yml`, '--profile', 'observability', 'config', '-q'], { stdio: 'pipe' });
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

interface PrometheusConfig {
  scrape_configs: Array<{ job_name: string; dns_sd_configs?: Array<{ names: string[]; type: string; port: number }> }>;
}

/** The host file (or folder) a service mounts at `target`; it must exist in the repository. */
function mountedFile(service: ComposeService, target: string): string {
  const volume = (service.volumes ?? []).find((v) => v.split(':')[1] === target);
  expect(volume, `a volume mounted at ${target}`).toBeDefined();
  const path = `${root}${volume!.split(':')[0].replace(/^\.\//, '')}`;
  expect(existsSync(path), path).toBe(true);
  return path;
}
