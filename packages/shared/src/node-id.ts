import ipaddr from 'ipaddr.js';
import type { NodeId } from './types.ts';

/**
 * Node ids: "host:port", IPv6 hosts in brackets ("[::1]:8080"), IPv4 in four-part decimal,
 * names lowercased. Every service names a node the same way because every one of them goes
 * through this module: config keys (MAXCONN_MAP, NODE_API_KEYS), scan targets, fleet records
 * and the gateway's lookups. Two spellings of one address ("[0:0::1]:8080") are one node.
 */

/** "host:port" from a host (IPv6 without brackets) and a port. */
export function nodeIdOf(host: string, port: number): NodeId {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The host as a URL or Host header needs it: IPv6 in brackets. */
export function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** http://host:port for a node's address. */
export function originOf(node: { host: string; port: number }): string {
  return `http://${hostForUrl(node.host)}:${node.port}`;
}

/** Stable order of node ids (plain code-unit order), the same on every replica. */
export function compareNodeIds(a: NodeId, b: NodeId): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const NODE_ID = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/;

/**
 * The canonical form of a written node id, or null when it is not host:port with a valid
 * host and a port from 1 to 65535.
 */
export function parseNodeId(text: string): { node: NodeId; host: string; port: number } | null {
  const match = NODE_ID.exec(text.trim());
  if (!match) return null;
  const port = Number(match[3]);
  if (port < 1 || port > 65_535) return null;
  const host = normalizeHost(match[1] ?? match[2]);
  if (host === null || (match[1] !== undefined && !host.includes(':'))) return null;
  return { node: nodeIdOf(host, port), host, port };
}

/** parseNodeId's id, or the input trimmed and lowercased when it is not a valid id. */
export function normalizeNodeId(text: string): NodeId {
  return parseNodeId(text)?.node ?? text.trim().toLowerCase();
}

/**
 * An IPv4 address (four-part decimal only, canonical), an IPv6 address (RFC 5952 form, no
 * zone), or a DNS name (lowercased); null for anything else. A name whose last label is a
 * number is refused: URL parsers read "10.1" or "0x7f.1" as an IPv4 address, so it would
 * reach somewhere the user did not mean.
 */
export function normalizeHost(host: string): string | null {
  if (host.includes(':')) {
    if (!ipaddr.IPv6.isValid(host)) return null;
    const address = ipaddr.IPv6.parse(host);
    return address.zoneId ? null : address.toRFC5952String();
  }
  if (ipaddr.IPv4.isValidFourPartDecimal(host)) return ipaddr.IPv4.parse(host).toString();
  const name = host.toLowerCase();
  const labels = name.split('.');
  const label = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
  const numericTail = /^(?:\d+|0x[0-9a-f]*)$/.test(labels[labels.length - 1]);
  if (name.length > 253 || numericTail || !labels.every((l) => label.test(l))) return null;
  return name;
}
