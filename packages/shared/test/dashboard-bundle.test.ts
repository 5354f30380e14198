/**
 * The dashboard inside a bundle made by the same buildBundles as `pnpm build`: the page's
 * files must be embedded, because dist/ runs without the source tree (the Docker image has
 * only dist/). The bundle is run with plain node from a directory with no assets beside it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { DASHBOARD_ASSET_NAMES, serveDashboard } from '../src/index.ts';
import { buildBundles } from '../../../scripts/build-bundles.ts';

const SERVE = fileURLToPath(new URL('../src/dashboard/serve-dashboard.ts', import.meta.url));
const PATHS = ['/dashboard', ...DASHBOARD_ASSET_NAMES.filter((n) => n !== 'index.html').map((n) => `/dashboard/assets/${n}`)];

let dir: string;
let bundle: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ai-lb-dashboard-bundle-'));
  const entry = join(dir, 'entry.ts');
  writeFileSync(
    entry,
    `import { serveDashboard } from ${JSON.stringify(SERVE)};
const out = {};
for (const path of ${JSON.stringify(PATHS)}) {
  const answer = serveDashboard(path);
  out[path] = { status: answer.status, type: answer.headers['content-type'], etag: answer.headers.etag, body: answer.body.toString('base64') };
}
process.stdout.write(JSON.stringify(out));
`,
  );
  ({ probe: bundle } = await buildBundles({ probe: entry }, join(dir, 'dist')));
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('a bundle serves the same bytes as the source tree, with no asset file on disk', () => {
  const fromBundle = JSON.parse(execFileSync(process.execPath, [bundle], { cwd: dir, encoding: 'utf8' })) as Record<
    string,
    { status: number; type: string; etag: string; body: string }
  >;
  for (const path of PATHS) {
    const here = serveDashboard(path)!;
    expect(fromBundle[path], path).toEqual({
      status: 200,
      type: here.headers['content-type'],
      etag: here.headers.etag,
      body: here.body.toString('base64'),
    });
  }
});
