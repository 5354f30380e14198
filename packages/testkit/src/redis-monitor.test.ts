import { expect, test } from 'vitest';
import { parseMonitorLine } from './redis-monitor.ts';

test('a MONITOR line gives its source and its unescaped arguments', () => {
  const line = String.raw`+1795740002.256845 [0 127.0.0.1:49996] "evalsha" "ab12" "1" "k:\"q\"" "line\nnext" "\xc3\xa9" "back\\slash"`;
  expect(parseMonitorLine(line)).toEqual({
    source: '127.0.0.1:49996',
    args: ['evalsha', 'ab12', '1', 'k:"q"', 'line\nnext', '\xc3\xa9', 'back\\slash'],
  });
  expect(parseMonitorLine('+1795740002.256978 [0 lua] "TIME"')).toEqual({ source: 'lua', args: ['TIME'] });
  expect(parseMonitorLine('+OK')).toBeNull();
});
