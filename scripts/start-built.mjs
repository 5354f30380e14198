/**
 * `pnpm start`, `pnpm start:gateway`, `pnpm start:monitor`: run the service as the Docker image
 * does, from its plain-JavaScript bundle (dist/<name>.mjs), in this same process (so the
 * V8 flags on the node command line are the service's own). The bundle is built first when
 * it is missing or older than any source it is built from, so an edit is never run stale.
 * Plain JavaScript on purpose: under tsx every process keeps a loader thread of ≈ 35 MB.
 *
 *   node --max-semi-space-size=8 --heap-growing-percent=20 --no-memory-reducer scripts/start-built.mjs gateway
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const SERVICES = ['start', 'gateway', 'monitor'];
const SOURCES = ['packages', 'scripts/build-bundles.ts', 'package.json', 'pnpm-lock.yaml'];

/** Newest modification time (ms) under these paths, node_modules and tests left out. */
function newestMtime(paths) {
  let newest = 0;
  const visit = (path) => {
    const stat = statSync(path, { throwIfNoEntry: false });
    if (stat === undefined) return;
    if (!stat.isDirectory()) {
      newest = Math.max(newest, stat.mtimeMs);
      return;
    }
    for (const entry of readdirSync(path)) {
      if (entry !== 'node_modules' && entry !== 'test' && !entry.endsWith('.test.ts')) visit(join(path, entry));
    }
  };
  for (const path of paths) visit(join(root, path));
  return newest;
}

const name = process.argv[2];
if (!SERVICES.includes(name)) {
  process.stderr.write(`usage: node scripts/start-built.mjs ${SERVICES.join('|')}\n`);
  process.exit(2);
}
process.argv.splice(2, 1);
const bundle = join(root, 'dist', `${name}.mjs`);
if (!existsSync(bundle) || statSync(bundle).mtimeMs < newestMtime(SOURCES)) {
  process.stderr.write(`building ${bundle} (pnpm build): it is missing or older than the source\n`);
  // Built aside and renamed into dist/ (atomic): a gateway and a monitor started together
  // must not import a bundle the other one is half-way through writing. The build's output
  // goes to stderr: a service's first stdout line is its ready line.
  const aside = join(root, 'dist', `.build-${process.pid}`);
  mkdirSync(aside, { recursive: true });
  const build = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts/build-bundles.ts'), aside], {
    cwd: root,
    stdio: ['ignore', 2, 2],
  });
  if (build.status !== 0) {
    rmSync(aside, { recursive: true, force: true });
    process.exit(build.status ?? 1);
  }
  for (const file of readdirSync(aside)) renameSync(join(aside, file), join(root, 'dist', file));
  rmSync(aside, { recursive: true, force: true });
}
await import(pathToFileURL(bundle).href);
