/**
 * How the bench runs its processes. `bundle` (the default): the gateway and the fake
 * engine as plain-JavaScript bundles built by `pnpm build`'s own buildBundles — the code
 * and V8 flags a deployment runs, started in a third of tsx's time (measured on the shared
 * 2-core machine: 2.5 s against 7–9 s per gateway), which is what keeps the whole matrix
 * within its time bound. `tsx`: exactly as `pnpm start` runs them.
 */
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAKE_ENGINE_ENTRY } from '@ai-lb/testkit';
import { buildBundles, SERVICE_ENTRIES } from '../../scripts/build-bundles.ts';

export type RuntimeKind = 'bundle' | 'tsx';

export interface Runtime {
  /** The services' entry point; null = packages/gateway/src/main.ts through tsx. */
  servicesBundle: string | null;
  engineBundle: string | null;
  /** Removes what prepareRuntime wrote. */
  cleanup(): void;
}

const OUT_ROOT = fileURLToPath(new URL('../../.bench-out/', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../../packages/testkit/fixtures/', import.meta.url));

export async function prepareRuntime(kind: RuntimeKind): Promise<Runtime> {
  if (kind === 'tsx') return { servicesBundle: null, engineBundle: null, cleanup: () => undefined };
  // One directory per run: a test and a bench may build at the same time.
  const outDir = join(OUT_ROOT, `routing-${process.pid}`);
  mkdirSync(outDir, { recursive: true });
  // The fake engine reads its recorded shapes from ../fixtures next to wherever it runs.
  if (!existsSync(join(outDir, 'fixtures'))) symlinkSync(FIXTURES, join(outDir, 'fixtures'), 'dir');
  // Also on Ctrl-C (run.ts exits through process.exit): the bundles are 3 MB each.
  process.once('exit', () => rmSync(outDir, { recursive: true, force: true }));
  const built = await buildBundles({ start: SERVICE_ENTRIES.start, 'fake-engine': FAKE_ENGINE_ENTRY }, join(outDir, 'bin'));
  return {
    servicesBundle: built.start,
    engineBundle: built['fake-engine'],
    cleanup: () => rmSync(outDir, { recursive: true, force: true }),
  };
}
