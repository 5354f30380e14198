/**
 * Prints where a process spent its CPU, from a V8 .cpuprofile (`pnpm bench --cpu-prof`
 * writes one per forwarding process into .bench-out/<target>/): heaviest first, so a hot
 * spot is named by file and function rather than guessed.
 *
 *   npx tsx bench/summarize-cpu-profile.ts <file.cpuprofile> [--top 25] [--by self|total|file] [--match gateway/src]
 *
 * self: time in the function itself; total: time with everything it called (counted once
 * per sample, so recursion does not inflate it); file: self time summed per source file —
 * in a bundle (the bench runs bundles), per file it was built from, by the `// path` line
 * esbuild writes before each module's code.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export type HotSpotMode = 'self' | 'total' | 'file';

export interface HotSpot {
  where: string;
  ms: number;
  /** Share of the busy (non-idle) time. */
  share: number;
}

const NOT_BUSY = new Set(['(idle)', '(program)']);

/** The source file a bundle's line came from; undefined when the url is not a bundle. */
export type SourceOf = (url: string, lineNumber: number) => string | undefined;

export function summarizeCpuProfile(
  profile: CpuProfile,
  mode: HotSpotMode = 'self',
  top = 25,
  match = '',
  sourceOf: SourceOf = () => undefined,
): HotSpot[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const totals = new Map<string, number>();
  let busyUs = 0;
  profile.samples.forEach((id, i) => {
    const leaf = byId.get(id);
    const delta = profile.timeDeltas[i] ?? 0;
    if (!leaf || NOT_BUSY.has(leaf.callFrame.functionName)) return;
    busyUs += delta;
    const keys = mode === 'total' ? stackKeys(leaf, byId, parentOf) : [mode === 'file' ? fileOf(leaf, sourceOf) : describe(leaf)];
    for (const key of keys) totals.set(key, (totals.get(key) ?? 0) + delta);
  });
  return [...totals.entries()]
    .filter(([where]) => where.includes(match))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([where, us]) => ({ where, ms: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
}

/** Every distinct function on the sample's stack, leaf to root. */
function stackKeys(leaf: ProfileNode, byId: Map<number, ProfileNode>, parentOf: Map<number, number>): Set<string> {
  const keys = new Set<string>();
  for (let node: ProfileNode | undefined = leaf, depth = 0; node && depth < 1000; depth++) {
    keys.add(describe(node));
    const parent = parentOf.get(node.id);
    node = parent === undefined ? undefined : byId.get(parent);
  }
  keys.delete('(root)');
  return keys;
}

function fileOf(node: ProfileNode, sourceOf: SourceOf): string {
  const { url, lineNumber, functionName } = node.callFrame;
  return shorten(sourceOf(url, lineNumber) ?? url) || `(${functionName || 'native'})`;
}

/**
 * Reads each bundle (`.mjs`) a profile names once, and maps its lines (0-based, as profiles
 * count them) to the module marker above them.
 */
export function bundleSources(read: (path: string) => string = (path) => readFileSync(path, 'utf8')): SourceOf {
  const markers = new Map<string, Array<[line: number, source: string]>>();
  return (url, lineNumber) => {
    if (!url.startsWith('file://') || !url.endsWith('.mjs')) return undefined;
    let marks = markers.get(url);
    if (marks === undefined) {
      marks = [];
      read(fileURLToPath(url))
        .split('\n')
        .forEach((line, i) => {
          if (line.startsWith('// ') && !line.includes(' ', 3)) marks!.push([i, line.slice(3)]);
        });
      markers.set(url, marks);
    }
    let found: string | undefined;
    for (let lo = 0, hi = marks.length - 1; lo <= hi; ) {
      const mid = (lo + hi) >> 1;
      if (marks[mid]![0] <= lineNumber) {
        found = marks[mid]![1];
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  };
}

function describe(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = shorten(url);
  return `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
}

function shorten(url: string): string {
  return url
    .replace(/^file:\/\//, '')
    .replace(/^(?:.*\/)?node_modules\/\.pnpm\/[^/]+\/node_modules\//, '')
    .replace(/^.*\/(packages|bench)\//, '$1/');
}

function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, by: { type: 'string', default: 'self' }, match: { type: 'string', default: '' } },
  });
  const mode = values.by as HotSpotMode;
  if (positionals.length === 0 || !['self', 'total', 'file'].includes(mode)) {
    process.stderr.write('usage: summarize-cpu-profile.ts <file.cpuprofile>… [--top N] [--by self|total|file] [--match text]\n');
    process.exit(2);
  }
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    process.stdout.write(`${file} (${mode}, share of busy time)\n`);
    for (const spot of summarizeCpuProfile(profile, mode, Number(values.top), values.match, bundleSources())) {
      process.stdout.write(`${(spot.share * 100).toFixed(1).padStart(5)}%  ${spot.ms.toFixed(0).padStart(6)} ms  ${spot.where}\n`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main();
