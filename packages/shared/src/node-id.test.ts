import { describe, expect, test } from 'vitest';
import { compareNodeIds, hostForUrl, nodeIdOf, normalizeNodeId, originOf, parseNodeId } from './node-id.ts';

describe('node ids', () => {
  test('one canonical id for every spelling of an address', () => {
    expect(normalizeNodeId('[0:0::1]:8080')).toBe('[::1]:8080');
    expect(normalizeNodeId(' [0:0:0:0:0:0:0:1]:8080 ')).toBe('[::1]:8080');
    expect(normalizeNodeId('[FE80::A]:1')).toBe('[fe80::a]:1');
    expect(normalizeNodeId('GPU-Box:1234')).toBe('gpu-box:1234');
    expect(normalizeNodeId('10.0.0.1:80')).toBe('10.0.0.1:80');
  });

  test('what is not a valid id is only trimmed and lowercased', () => {
    expect(parseNodeId('010.000.000.001:80')).toBeNull(); // not four-part decimal, numeric tail
    expect(normalizeNodeId('010.000.000.001:80')).toBe('010.000.000.001:80');
    expect(parseNodeId('::1:8080')).toBeNull(); // IPv6 without brackets is ambiguous
    expect(parseNodeId('[gpu-box]:80')).toBeNull(); // brackets are for IPv6 only
    expect(parseNodeId('host:0')).toBeNull();
    expect(parseNodeId('host:65536')).toBeNull();
    expect(parseNodeId('[fe80::1%eth0]:80')).toBeNull();
    expect(parseNodeId('host')).toBeNull();
  });

  test('parse gives host and port as a URL needs them', () => {
    expect(parseNodeId('[::1]:8080')).toEqual({ node: '[::1]:8080', host: '::1', port: 8080 });
    expect(nodeIdOf('::1', 8080)).toBe('[::1]:8080');
    expect(hostForUrl('::1')).toBe('[::1]');
    expect(hostForUrl('[::1]')).toBe('[::1]');
    expect(originOf({ host: '::1', port: 1234 })).toBe('http://[::1]:1234');
    expect(originOf({ host: '127.0.0.1', port: 1234 })).toBe('http://127.0.0.1:1234');
  });

  test('the order of ids is plain and total', () => {
    expect(['b:1', 'a:2', '[::1]:1', 'a:10'].sort(compareNodeIds)).toEqual(['[::1]:1', 'a:10', 'a:2', 'b:1']);
    expect(compareNodeIds('a:1', 'a:1')).toBe(0);
  });
});
