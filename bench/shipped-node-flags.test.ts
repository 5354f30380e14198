import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { parseBenchOptions, SHIPPED_V8, v8Flags } from './bench-options.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const read = (file: string) => readFileSync(`${root}${file}`, 'utf8');
const shipped = v8Flags(SHIPPED_V8);

/** The bench's numbers describe a runtime: every way ai-lb is started must be that runtime. */
describe('the V8 flags the bench measures are the ones ai-lb ships with', () => {
  test('bench defaults', () => {
    expect(shipped).toEqual(['--max-semi-space-size=8', '--heap-growing-percent=20', '--no-memory-reducer']);
    expect(v8Flags(parseBenchOptions([]))).toEqual(shipped);
  });

  test('Dockerfile CMD', () => {
    const cmd = read('Dockerfile').match(/^CMD (\[.*\])$/m);
    expect(cmd).not.toBeNull();
    expect(JSON.parse(cmd![1])).toEqual(['node', ...shipped, 'dist/gateway.mjs']);
  });

  test.each(['gateway', 'monitor'])('docker-compose.yml %s', (service) => {
    const compose = parse(read('docker-compose.yml')) as { services: Record<string, { command: string[] }> };
    expect(compose.services[service].command).toEqual(['node', ...shipped, `dist/${service}.mjs`]);
  });

  test.each([
    ['start', 'start'],
    ['start:gateway', 'gateway'],
    ['start:monitor', 'monitor'],
  ])('pnpm %s runs the built bundle, as the image does', (script, bundle) => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(scripts[script]).toBe(`node ${shipped.join(' ')} scripts/start-built.mjs ${bundle}`);
  });
});
