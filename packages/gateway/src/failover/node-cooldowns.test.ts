import { expect, test } from 'vitest';
import { MAX_COOLDOWN_MS, NodeCooldowns } from './with-failover.ts';

test('a cooling node is left out until its time, unless every node is cooling; long waits are capped', () => {
  let now = 1000;
  const cooldowns = new NodeCooldowns(() => now);
  const nodes = [{ node: 'a' }, { node: 'b' }];
  expect(cooldowns.filter(nodes)).toBe(nodes);
  cooldowns.note('a', 2000);
  expect(cooldowns.filter(nodes).map((n) => n.node)).toEqual(['b']);
  cooldowns.note('b', now + 10 * MAX_COOLDOWN_MS);
  expect(cooldowns.filter(nodes).map((n) => n.node)).toEqual(['a', 'b']);
  now = 2000;
  expect(cooldowns.filter(nodes).map((n) => n.node)).toEqual(['a']);
  now = 1000 + MAX_COOLDOWN_MS;
  expect(cooldowns.filter(nodes)).toEqual(nodes);
});
