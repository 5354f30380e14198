/**
 * SCAN_HOSTS × SCAN_PORTS -> the list of targets to probe.
 *
 * SCAN_HOSTS entries: names (`gpu-box.lan`), IPv4/IPv6 addresses (`10.0.0.5`, `::1`,
 * `[::1]`), CIDR blocks (`192.168.1.0/24`, `fd00::/120`) and `host:port` entries
 * (`10.0.0.5:8080`, `[::1]:8080`) that pin one port instead of SCAN_PORTS.
 * Addresses are parsed and normalised by ipaddr.js; node ids are `host:port`, IPv6 in
 * brackets, names lowercased as given (never resolved here: DNS happens at connect time).
 */
import ipaddr from 'ipaddr.js';
import { ConfigError, nodeIdOf, normalizeHost as normalizeHostName, type NodeId } from '@ai-lb/shared';

export interface ScanTarget {
  node: NodeId;
  /** Address or name, IPv6 without brackets. */
  host: string;
  port: number;
}

/**
 * A /16 × 1 port, or a /20 × 16 ports. Past this a scan cannot finish within a usual
 * SCAN_INTERVAL; refusing beats a monitor that silently never completes a scan.
 */
export const MAX_SCAN_TARGETS = 65_536;

/** One SCAN_HOSTS entry, not yet expanded. */
interface HostEntry {
  raw: string;
  /** Addresses or names it stands for (a bigint: an IPv6 block can be astronomically large). */
  count: bigint;
  hosts: () => Iterable<string>;
  /** A port pinned by a host:port entry, or null for SCAN_PORTS. */
  port: number | null;
}

export function expandTargets(hosts: readonly string[], ports: readonly number[], maxTargets: number = MAX_SCAN_TARGETS): ScanTarget[] {
  const entries = hosts.map(parseHostEntry);
  const sizes = entries.map((entry) => entry.count * BigInt(entry.port === null ? ports.length : 1));
  const total = sizes.reduce((sum, n) => sum + n, 0n);
  if (total > BigInt(maxTargets)) {
    // Name the one entry that is too big by itself when there is one: that is what to fix.
    const culprit = entries.find((_, i) => sizes[i] > BigInt(maxTargets))?.raw ?? hosts.join(',');
    throw new ConfigError(
      'SCAN_HOSTS',
      culprit,
      `at most ${maxTargets} scan targets (hosts × ports), not ${total}: use smaller CIDR blocks or fewer SCAN_PORTS`,
    );
  }
  const seen = new Map<NodeId, ScanTarget>();
  for (const entry of entries) {
    for (const host of entry.hosts()) {
      for (const port of entry.port === null ? ports : [entry.port]) {
        const node = nodeIdOf(host, port);
        if (!seen.has(node)) seen.set(node, { node, host, port });
      }
    }
  }
  return [...seen.values()];
}

function parseHostEntry(raw: string): HostEntry {
  const entry = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) {
    const host = normalizeIPv6(bracketed[1], entry);
    return single(entry, host, bracketed[2] === undefined ? null : parsePort(bracketed[2], entry));
  }
  if (entry.includes('/')) return parseCidr(entry);
  const colons = entry.split(':').length - 1;
  if (colons >= 2) return single(entry, normalizeIPv6(entry, entry), null);
  if (colons === 1) {
    const [host, port] = entry.split(':');
    return single(entry, normalizeHost(host, entry), parsePort(port, entry));
  }
  return single(entry, normalizeHost(entry, entry), null);
}

function single(raw: string, host: string, port: number | null): HostEntry {
  return { raw, count: 1n, hosts: () => [host], port };
}

/** The shared normalisation, with this module's error naming the SCAN_HOSTS entry. */
function normalizeHost(host: string, entry: string): string {
  const normalized = normalizeHostName(host);
  if (normalized !== null) return normalized;
  throw host.includes(':')
    ? invalid(entry, 'a valid IPv6 address without a %zone suffix, e.g. ::1 or [::1]:8080')
    : invalid(entry, 'a host name, an IPv4 address (a.b.c.d), an IPv6 address, a CIDR block or host:port');
}

function normalizeIPv6(host: string, entry: string): string {
  if (!host.includes(':')) throw invalid(entry, 'a valid IPv6 address, e.g. ::1 or [::1]:8080');
  return normalizeHost(host, entry);
}

function parsePort(text: string, entry: string): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65_535) throw invalid(entry, 'host:port with a port from 1 to 65535');
  return port;
}

function parseCidr(entry: string): HostEntry {
  const v4 = ipaddr.IPv4.isValidCIDRFourPartDecimal(entry);
  if (!v4 && !ipaddr.IPv6.isValidCIDR(entry)) {
    throw invalid(entry, 'a CIDR block such as 192.168.1.0/24 or fd00::/120');
  }
  const [address, prefix] = ipaddr.parseCIDR(entry);
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).zoneId) {
    throw invalid(entry, 'a CIDR block without a %zone suffix');
  }
  const bits = v4 ? 32 : 128;
  const first = toBigInt(v4 ? ipaddr.IPv4.networkAddressFromCIDR(entry) : ipaddr.IPv6.networkAddressFromCIDR(entry));
  const size = 2n ** BigInt(bits - prefix);
  // IPv4 blocks of /30 and wider skip their network and broadcast addresses: no host
  // answers there. /31 (RFC 3021) and /32 have none to skip.
  const skipEnds = v4 && prefix <= 30;
  const start = skipEnds ? first + 1n : first;
  const count = skipEnds ? size - 2n : size;
  return {
    raw: entry,
    count,
    port: null,
    hosts: function* () {
      for (let i = 0n; i < count; i++) yield fromBigInt(start + i, bits / 8);
    },
  };
}

/** Address <-> integer through hex text, so a range can be walked with plain arithmetic. */
function toBigInt(address: ipaddr.IPv4 | ipaddr.IPv6): bigint {
  return BigInt(`0x${Buffer.from(address.toByteArray()).toString('hex')}`);
}

function fromBigInt(value: bigint, bytes: number): string {
  const address = ipaddr.fromByteArray([...Buffer.from(value.toString(16).padStart(bytes * 2, '0'), 'hex')]);
  return address.kind() === 'ipv6' ? (address as ipaddr.IPv6).toRFC5952String() : address.toString();
}

function invalid(entry: string, allowed: string): ConfigError {
  return new ConfigError('SCAN_HOSTS', entry, allowed);
}
