import { isIP } from 'node:net';

/**
 * IP address spellings, normalised the way a connecting socket sees them. IPv4 literals in URLs come
 * in many spellings (`2130706433`, `0x7f.1`, `017700000001`, `127.1`) that all mean 127.0.0.1; the
 * WHATWG URL parser turns every one of them into dotted decimal, so URLs are read through it.
 */

export type IpFamily = 'ipv4' | 'ipv6';

export interface CanonicalAddress {
  /** Dotted decimal for IPv4 (also for IPv4-mapped IPv6), compressed lower-case for IPv6. */
  readonly address: string;
  readonly family: IpFamily;
}

const MAPPED_PREFIX = '::ffff:';

/** Canonical form of an IP address as a socket reports it; undefined when `text` is not one. */
export function canonicalAddress(text: string): CanonicalAddress | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const version = isIP(bare);
  if (version === 4) return { address: bare, family: 'ipv4' };
  if (version !== 6) return undefined;
  const zoneAt = bare.indexOf('%');
  const withoutZone = zoneAt < 0 ? bare : bare.slice(0, zoneAt);
  const compressed = new URL(`http://[${withoutZone}]/`).hostname.slice(1, -1);
  if (compressed.startsWith(MAPPED_PREFIX)) {
    const ipv4 = mappedIpv4(compressed.slice(MAPPED_PREFIX.length));
    if (ipv4 !== undefined) return { address: ipv4, family: 'ipv4' };
  }
  return { address: compressed, family: 'ipv6' };
}

/** `7f00:1` (the last 32 bits of a mapped address as the URL parser prints them) → `127.0.0.1`. */
function mappedIpv4(tail: string): string | undefined {
  if (isIP(tail) === 4) return tail;
  const groups = tail.split(':');
  if (groups.length !== 2) return undefined;
  const high = Number.parseInt(groups[0]!, 16);
  const low = Number.parseInt(groups[1]!, 16);
  if (Number.isNaN(high) || Number.isNaN(low)) return undefined;
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/**
 * The IPv4 address a deprecated IPv4-compatible IPv6 address carries (`::127.0.0.1`, printed `::7f00:1`;
 * RFC 4291 §2.5.5.1), from its canonical form; undefined for any other address, `::` and `::1` included.
 */
export function ipv4CompatibleAddress(ipv6: string): string | undefined {
  if (!ipv6.startsWith('::') || ipv6 === '::' || ipv6 === '::1') return undefined;
  const groups = ipv6.slice(2).split(':');
  if (groups.length > 2 || groups.some((group) => !/^[0-9a-f]{1,4}$/.test(group))) return undefined;
  return mappedIpv4(groups.length === 1 ? `0:${groups[0]}` : groups.join(':'));
}

/**
 * The address an http(s) URL names literally, in canonical form, and the port it connects to;
 * `address` is undefined when the host is a name (checked when it is resolved, at connect time).
 */
export function urlTarget(url: string): { address: CanonicalAddress | undefined; port: number } | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const port = parsed.port === '' ? (parsed.protocol === 'https:' ? 443 : 80) : Number(parsed.port);
  return { address: canonicalAddress(parsed.hostname), port };
}

export interface Cidr {
  /** As written in the setting, for messages. */
  readonly text: string;
  readonly network: string;
  readonly prefix: number;
  readonly family: IpFamily;
}

/** `10.0.0.0/8`, `fe80::/10`, or a single address (`192.0.2.7` = /32); undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const network = slash < 0 ? text : text.slice(0, slash);
  const version = isIP(network);
  if (version === 0) return undefined;
  const family: IpFamily = version === 4 ? 'ipv4' : 'ipv6';
  const max = version === 4 ? 32 : 128;
  if (slash < 0) return { text, network, prefix: max, family };
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  return { text, network, prefix, family };
}

/**
 * Who a per-client count (a `scope: ip` rate limit, failed authentications) is kept for: an IPv4 address
 * itself, an IPv6 address's /64. One subscriber is handed a whole /64 (a home connection, a cloud VM),
 * so counting each of its 2^64 addresses apart would give one client as many allowances as it likes.
 * `address` is canonical (canonicalAddress): dotted decimal, or compressed lower-case IPv6.
 */
export function clientCountingKey(address: string): string {
  if (!address.includes(':')) return address;
  const zoneAt = address.indexOf('%');
  const bare = zoneAt < 0 ? address : address.slice(0, zoneAt);
  const gap = bare.indexOf('::');
  let groups: string[];
  if (gap < 0) {
    groups = bare.split(':');
  } else {
    const head = gap === 0 ? [] : bare.slice(0, gap).split(':');
    const tail = gap + 2 === bare.length ? [] : bare.slice(gap + 2).split(':');
    groups = [...head, ...Array<string>(Math.max(0, 8 - head.length - tail.length)).fill('0'), ...tail];
  }
  if (groups.length !== 8) return address;
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}
