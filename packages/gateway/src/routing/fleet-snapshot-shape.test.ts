import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runWithNativesSyntax } from '../testing/natives-syntax.ts';

const SNAPSHOT = fileURLToPath(new URL('./fleet-snapshot.ts', import.meta.url));
const HARNESS = fileURLToPath(new URL('../../../shared/src/state/contract-harness.ts', import.meta.url));

/**
 * Every fleet snapshot must have the hidden class of every other: the request path reads its
 * indexes, and code optimised for one class is thrown away when a snapshot of another comes.
 * A copy made with `{ ...previous }` (a refresh that keeps the indexes) gets a new class at
 * every refresh. V8's `%HaveSameMap` tells, in a process started with --allow-natives-syntax.
 */
describe('a fleet snapshot', () => {
  it('has the hidden class of the empty one, whether its indexes were rebuilt or kept', async () => {
    const source = `
      import { buildSnapshot, EMPTY_SNAPSHOT } from ${JSON.stringify(SNAPSHOT)};
      import { nodeState } from ${JSON.stringify(HARNESS)};
      const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)');
      const record = (node, models) => ({ state: nodeState(node, { models }), freshness: 'fresh', freshUntilMs: 0, scan: 1, retained: false });
      const aliases = new Map();
      const built = buildSnapshot([record('a:1', ['m'])], EMPTY_SNAPSHOT, aliases);
      let kept = built;
      for (let i = 0; i < 5; i++) kept = buildSnapshot([record('a:1', ['m'])], kept, aliases);
      const rebuilt = buildSnapshot([record('a:1', ['m', 'n'])], kept, aliases);
      const shapes = { built: sameMap(built, EMPTY_SNAPSHOT), kept: sameMap(kept, EMPTY_SNAPSHOT), rebuilt: sameMap(rebuilt, EMPTY_SNAPSHOT) };
      process.stdout.write(JSON.stringify({ keptIndexes: kept.healthyByModel === built.healthyByModel, ...shapes }));
    `;
    const stdout = await runWithNativesSyntax(source);
    expect(JSON.parse(stdout)).toEqual({ keptIndexes: true, built: true, kept: true, rebuilt: true });
  });
});
