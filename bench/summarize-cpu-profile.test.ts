import { expect, test } from 'vitest';
import { bundleSources, summarizeCpuProfile, type CpuProfile } from './summarize-cpu-profile.ts';

const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });

// (root) -> handle (gateway route) -> parse (JSON) ; (root) -> (idle)
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 4] },
    { id: 2, callFrame: frame('handle', 'file:///work/main/packages/gateway/src/routes/chat.ts', 9), children: [3] },
    { id: 3, callFrame: frame('parse', 'file:///work/main/node_modules/.pnpm/x@1/node_modules/x/parse.js', 0) },
    { id: 4, callFrame: frame('(idle)') },
  ],
  samples: [2, 3, 3, 3, 4, 4],
  timeDeltas: [1000, 1000, 1000, 1000, 50_000, 50_000],
};

test('self time per function, idle excluded from the shares', () => {
  expect(summarizeCpuProfile(profile, 'self')).toEqual([
    { where: 'parse x/parse.js:1', ms: 3, share: 0.75 },
    { where: 'handle packages/gateway/src/routes/chat.ts:10', ms: 1, share: 0.25 },
  ]);
});

test('total time counts callees into their callers', () => {
  const spots = summarizeCpuProfile(profile, 'total');
  expect(spots[0]).toEqual({ where: 'handle packages/gateway/src/routes/chat.ts:10', ms: 4, share: 1 });
  expect(spots.map((s) => s.where)).not.toContain('(root)');
});

test('by file, filtered by --match', () => {
  expect(summarizeCpuProfile(profile, 'file', 10, 'packages/')).toEqual([
    { where: 'packages/gateway/src/routes/chat.ts', ms: 1, share: 0.25 },
  ]);
});

test('by file in a bundle: the source file each line was built from', () => {
  const bundle = [
    'import x from "y";',
    '// packages/gateway/src/metrics.ts',
    'function a() {}',
    '// node_modules/.pnpm/u@7/node_modules/u/lib/client.js',
    'function b() {}',
  ];
  const url = 'file:///work/main/.bench-out/js/start.mjs';
  const bundled: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)'), children: [2, 3] },
      { id: 2, callFrame: frame('a', url, 2) },
      { id: 3, callFrame: frame('b', url, 4) },
    ],
    samples: [2, 3, 3],
    timeDeltas: [1000, 1000, 1000],
  };
  const sources = bundleSources((path) => {
    expect(path).toBe('/work/main/.bench-out/js/start.mjs');
    return bundle.join('\n');
  });
  expect(summarizeCpuProfile(bundled, 'file', 10, '', sources).map((s) => s.where)).toEqual([
    'u/lib/client.js',
    'packages/gateway/src/metrics.ts',
  ]);
  expect(sources(url, 0)).toBeUndefined();
});
