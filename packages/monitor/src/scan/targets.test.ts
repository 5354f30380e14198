import { describe, expect, test } from 'vitest';
import { ConfigError } from '@ai-lb/shared';
import { expandTargets, MAX_SCAN_TARGETS } from './targets.ts';

const nodes = (hosts: string[], ports: number[] = [8000]) => expandTargets(hosts, ports).map((t) => t.node);

describe('expandTargets', () => {
  test('a plain IPv4 address × every port', () => {
    expect(expandTargets(['10.0.0.5'], [1234, 11434])).toEqual([
      { node: '10.0.0.5:1234', host: '10.0.0.5', port: 1234 },
      { node: '10.0.0.5:11434', host: '10.0.0.5', port: 11434 },
    ]);
  });

  test('an IPv4 CIDR block skips its network and broadcast addresses', () => {
    const hosts = nodes(['192.168.1.0/30']);
    expect(hosts).toEqual(['192.168.1.1:8000', '192.168.1.2:8000']);
    expect(nodes(['192.168.1.0/24'])).toHaveLength(254);
    expect(nodes(['192.168.1.0/24'])[253]).toBe('192.168.1.254:8000');
  });

  test('/31 and /32 keep every address; host bits in a block are ignored', () => {
    expect(nodes(['10.0.0.0/31'])).toEqual(['10.0.0.0:8000', '10.0.0.1:8000']);
    expect(nodes(['10.0.0.7/32'])).toEqual(['10.0.0.7:8000']);
    expect(nodes(['10.0.0.77/30'])).toEqual(['10.0.0.77:8000', '10.0.0.78:8000']);
  });

  test('a block crosses octet boundaries', () => {
    const hosts = nodes(['127.0.0.0/22']);
    expect(hosts).toHaveLength(1022);
    expect(hosts).toContain('127.0.1.0:8000');
    expect(hosts.at(-1)).toBe('127.0.3.254:8000');
  });

  test('IPv6 addresses and blocks, bracketed in node ids, compressed (RFC 5952)', () => {
    expect(expandTargets(['::1/128'], [8080])).toEqual([{ node: '[::1]:8080', host: '::1', port: 8080 }]);
    expect(nodes(['0:0:0:0:0:0:0:1'])).toEqual(['[::1]:8000']);
    expect(nodes(['[FD00::1]'])).toEqual(['[fd00::1]:8000']);
    const block = nodes(['fd00::/126']);
    expect(block).toEqual(['[fd00::]:8000', '[fd00::1]:8000', '[fd00::2]:8000', '[fd00::3]:8000']);
  });

  test('host:port entries pin one port instead of SCAN_PORTS', () => {
    expect(nodes(['10.0.0.5:9000', '[::1]:8080', 'GPU-Box.lan:1234'], [1, 2, 3])).toEqual([
      '10.0.0.5:9000',
      '[::1]:8080',
      'gpu-box.lan:1234',
    ]);
  });

  test('names are kept as given, lowercased, never resolved', () => {
    expect(expandTargets(['LocalHost'], [11434])).toEqual([{ node: 'localhost:11434', host: 'localhost', port: 11434 }]);
  });

  test('duplicates collapse, first occurrence order kept', () => {
    expect(nodes(['10.0.0.1', '10.0.0.0/30', '10.0.0.1:8000', '::1', '[0::1]'])).toEqual(['10.0.0.1:8000', '10.0.0.2:8000', '[::1]:8000']);
  });

  test.each([
    ['10.0.0.256', /SCAN_HOSTS="10.0.0.256" is invalid/],
    ['10.1', /SCAN_HOSTS="10.1"/], // URL parsers read it as 10.0.0.1: refused
    ['box.0x7f', /SCAN_HOSTS="box.0x7f"/],
    ['under score!', /SCAN_HOSTS/],
    ['10.0.0.1:0', /port from 1 to 65535/],
    ['10.0.0.1:70000', /port from 1 to 65535/],
    ['[::1]:x', /SCAN_HOSTS/],
    ['10.0.0.0/33', /CIDR block/],
    ['fe80::1%eth0', /zone/],
    ['[fd00::1', /SCAN_HOSTS/],
  ])('refuses %s with a one-line error naming SCAN_HOSTS', (entry, message) => {
    let error: unknown;
    try {
      expandTargets([entry], [8000]);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });

  test('refuses a /8 by its size, before expanding anything', () => {
    const started = performance.now();
    expect(() => expandTargets(['10.0.0.0/8'], [8000])).toThrow(
      /^SCAN_HOSTS="10\.0\.0\.0\/8" is invalid: expected at most 65536 scan targets \(hosts × ports\), not 16777214/,
    );
    expect(() => expandTargets(['fd00::/64'], [8000])).toThrow(/SCAN_HOSTS="fd00::\/64"/);
    expect(performance.now() - started).toBeLessThan(100);
  });

  test('the bound counts hosts × ports over all entries', () => {
    expect(expandTargets(['10.0.0.0/20'], [1, 2, 3, 4])).toHaveLength(4094 * 4);
    // Each entry fits alone; together they do not, so the whole list is named.
    expect(() => expandTargets(['10.0.0.0/18', '10.1.0.0/18'], [1, 2, 3])).toThrow(
      'SCAN_HOSTS="10.0.0.0/18,10.1.0.0/18" is invalid: expected at most 65536 scan targets (hosts × ports), not 98292',
    );
    expect(() => expandTargets(['10.0.0.0/24'], [1, 2], 500)).toThrow(/at most 500 scan targets/);
    expect(MAX_SCAN_TARGETS).toBe(65_536);
  });
});
