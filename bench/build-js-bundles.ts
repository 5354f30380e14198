/**
 * `--runtime js` (the default): the forwarders the bench measures — the gateway, the node
 * floor and the http-proxy-middleware forwarder — run as plain-JavaScript bundles, built
 * here with esbuild (the one tsx itself uses), not through the tsx loader. tsx runs its
 * TypeScript loader on a thread of its own, ≈ 35 MB of RSS in every process (measured:
 * gateway idle 119 MB under tsx, 85 MB as a bundle); a deployment runs built JavaScript,
 * so that is what is measured, for every forwarder alike (issue 6, docs/performance.md).
 * `--runtime tsx` measures them as `pnpm start` runs them.
 */
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type BundledEntry = 'gateway' | 'node-floor' | 'hpm';

const SOURCES: Record<BundledEntry, string> = {
  gateway: fileURLToPath(new URL('../packages/gateway/src/main.ts', import.meta.url)),
  'node-floor': fileURLToPath(new URL('./node-floor.ts', import.meta.url)),
  hpm: fileURLToPath(new URL('./hpm-forwarder.ts', import.meta.url)),
};

/** The part of esbuild's API used here (esbuild is tsx's dependency, not ours: no types). */
interface Esbuild {
  build(options: Record<string, unknown>): Promise<{ errors: unknown[]; warnings: unknown[] }>;
}

function loadEsbuild(): Esbuild {
  const fromHere = createRequire(import.meta.url);
  return createRequire(fromHere.resolve('tsx/package.json'))('esbuild') as Esbuild;
}

/**
 * One ESM bundle per entry, dependencies included. The banner gives the bundle a `require`:
 * bundled CommonJS packages (express, ioredis…) require node built-ins at run time.
 */
export async function buildJsBundles(outDir: string): Promise<Record<BundledEntry, string>> {
  mkdirSync(outDir, { recursive: true });
  const esbuild = loadEsbuild();
  const out = {} as Record<BundledEntry, string>;
  await Promise.all(
    (Object.keys(SOURCES) as BundledEntry[]).map(async (entry) => {
      const outfile = join(outDir, `${entry}.mjs`);
      await esbuild.build({
        entryPoints: [SOURCES[entry]],
        outfile,
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        logLevel: 'warning',
        banner: { js: "import { createRequire as __benchCreateRequire } from 'node:module'; const require = __benchCreateRequire(import.meta.url);" },
      });
      out[entry] = outfile;
    }),
  );
  return out;
}
