/**
 * Prints where a process spent its CPU, from a V8 .cpuprofile (`pnpm bench --cpu-prof`
 * writes one per forwarding process into .bench-out/<target>/): heaviest first, so a hot
 * spot is named by file and function rather than guessed.
 *
 *   npx tsx bench/summarize-cpu-profile.ts <file.cpuprofile> [--top 25] [--by self|total|file] [--match gateway/src]
 *
 * self: time in the function itself; total: time with everything it called (counted once
 * per sample, so recursion does not inflate it); file: self time summed per source file.
 */
import { readFileSync } from 'node:fs';
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

export function summarizeCpuProfile(profile: CpuProfile, mode: HotSpotMode = 'self', top = 25, match = ''): HotSpot[] {
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
    const keys = mode === 'total' ? stackKeys(leaf, byId, parentOf) : [mode === 'file' ? fileOf(leaf) : describe(leaf)];
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

function fileOf(node: ProfileNode): string {
  return shorten(node.callFrame.url) || `(${node.callFrame.functionName || 'native'})`;
}

function describe(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = shorten(url);
  return `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
}

function shorten(url: string): string {
  return url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, '')
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
    for (const spot of summarizeCpuProfile(profile, mode, Number(values.top), values.match)) {
      process.stdout.write(`${(spot.share * 100).toFixed(1).padStart(5)}%  ${spot.ms.toFixed(0).padStart(6)} ms  ${spot.where}\n`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main();
