/**
 * `pnpm build`: the entry points of packages/cli (the all-in-one start, the gateway, the
 * monitor and the inventory CLI) as self-contained plain-JavaScript bundles in dist/
 * (esbuild, the one tsx ships with). This is what the Docker image runs: no TypeScript loader (tsx keeps a loader thread of ≈ 35 MB in every
 * process) and no node_modules in the runtime image. The benchmark bundles its forwarders
 * with the same function, so what it measures is what a deployment runs.
 */
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readDashboardAssets } from '../packages/shared/src/dashboard/dashboard-assets.ts';

/** The part of esbuild's API used here (esbuild is tsx's dependency, not ours: no types). */
interface Esbuild {
  build(options: Record<string, unknown>): Promise<{ errors: unknown[]; warnings: unknown[] }>;
}

function loadEsbuild(): Esbuild {
  const fromHere = createRequire(import.meta.url);
  return createRequire(fromHere.resolve('tsx/package.json'))('esbuild') as Esbuild;
}

/**
 * One ESM bundle per entry (name -> source .ts), dependencies included; returns name -> file.
 * The banner gives the bundle a `require`: bundled CommonJS packages (express, ioredis…)
 * require node built-ins at run time.
 */
export async function buildBundles<Name extends string>(entries: Record<Name, string>, outDir: string): Promise<Record<Name, string>> {
  mkdirSync(outDir, { recursive: true });
  const esbuild = loadEsbuild();
  // The dashboard page's files go inside the bundle: dist/ runs without the source tree.
  const define = { 'globalThis.__AI_LB_DASHBOARD_ASSETS__': JSON.stringify(readDashboardAssets()) };
  const out = {} as Record<Name, string>;
  await Promise.all(
    (Object.keys(entries) as Name[]).map(async (name) => {
      const outfile = join(outDir, `${name}.mjs`);
      await esbuild.build({
        entryPoints: [entries[name]],
        outfile,
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        logLevel: 'warning',
        define,
        banner: {
          js: "import { createRequire as __aiLbCreateRequire } from 'node:module'; const require = __aiLbCreateRequire(import.meta.url);",
        },
      });
      asciiOnly(outfile);
      out[name] = outfile;
    }),
  );
  return out;
}

/**
 * V8 keeps a module's source text (lazy compilation, Function#toString), and one non-ASCII
 * character makes the whole bundle a two-byte string, twice the heap (docs/performance.md).
 * esbuild already escapes strings and identifiers (charset ascii);
 * what is left are comments copied from dependencies ("request’s", "§"). A \u escape means
 * the same character in a string, a regular expression or an identifier, and is inert in a
 * comment, so every remaining non-ASCII character is written as one.
 */
export function asciiOnly(file: string): void {
  const text = readFileSync(file, 'utf8');
  if (!/[^\x00-\x7f]/.test(text)) return;
  writeFileSync(
    file,
    text.replace(/[^\x00-\x7f]/gu, (char) => {
      const code = char.codePointAt(0)!;
      return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
    }),
  );
}

const source = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url));

/** What `pnpm build` produces: the Docker image runs gateway and monitor; start is `pnpm start`'s all-in-one. */
export const SERVICE_ENTRIES = {
  start: source('packages/cli/src/start.ts'),
  gateway: source('packages/cli/src/gateway.ts'),
  monitor: source('packages/cli/src/monitor.ts'),
  inventory: source('packages/cli/src/inventory.ts'),
} as const;

if (import.meta.url === `file://${process.argv[1]}`) {
  const outDir = process.argv[2] ?? source('dist');
  const built = await buildBundles(SERVICE_ENTRIES, outDir);
  for (const [name, file] of Object.entries(built)) process.stdout.write(`built ${name}: ${file}\n`);
}
