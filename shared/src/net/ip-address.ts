import { isIP } from 'node:net';
import { ipv6WordsIn, readCidr } from './ip-literal.js';

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
  return dottedIpv4(high, low);
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

/** 64:ff9b, the first 32 bits of both NAT64 prefixes below. */
const NAT64_HIGH_WORD = 0x0064ff9b;
const NAT64_WORDS = new Uint32Array(4);

/**
 * The IPv4 address a NAT64 address carries in its last 32 bits (RFC 6052's /96 format), from its
 * canonical form: under the well-known prefix 64:ff9b::/96, or under any /96 a network takes from the
 * local-use prefix 64:ff9b:1::/48 (RFC 8215: `64:ff9b:1:ab::/96`); undefined for any other address.
 */
export function nat64Ipv4Address(ipv6: string): string | undefined {
  if (!ipv6.startsWith('64:ff9b:') || !ipv6WordsIn(ipv6, 0, ipv6.length, NAT64_WORDS)) return undefined;
  if (NAT64_WORDS[0] !== NAT64_HIGH_WORD) return undefined;
  const wellKnown = NAT64_WORDS[1] === 0 && NAT64_WORDS[2] === 0;
  const localUse = NAT64_WORDS[1]! >>> 16 === 1;
  if (!wellKnown && !localUse) return undefined;
  const ipv4 = NAT64_WORDS[3]!;
  return dottedIpv4(ipv4 >>> 16, ipv4 & 0xffff);
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
  const read = readCidr(text, CIDR_WORDS);
  if (read === undefined) return undefined;
  const network = read.networkEnd === text.length ? text : text.slice(0, read.networkEnd);
  return { text, network, prefix: read.prefix, family: read.family };
}

const CIDR_WORDS = new Uint32Array(4);

/** The IPv6 network a client is counted by unless a limit says otherwise: one subscriber's. */
export const DEFAULT_CLIENT_IPV6_PREFIX = 64;

/**
 * Who a per-client count (a `scope: ip` rate limit, failed authentications) is kept for: an IPv4 address
 * itself, an IPv6 address's network of `ipv6Prefix` bits (a /64 by default). One subscriber is handed a
 * whole /64 (a home connection, a cloud VM), often a /56 or a /48, so counting each of its addresses
 * apart would give one client as many allowances as it likes.
 * An IPv6 address that carries an IPv4 client's address (carriedIpv4) is that IPv4 client: by its /64,
 * every IPv4 client behind a NAT64 would be one client, and a 6to4 host 65,536 of them.
 * `address` is canonical (canonicalAddress): dotted decimal, or compressed lower-case IPv6. The key names
 * the network's leading groups and its length (`2001:db8:1:2::/64`, `2001:db8:1::/48`,
 * `2001:db8:0:0:0:0:0:1/128`).
 */
export function clientCountingKey(address: string, ipv6Prefix = DEFAULT_CLIENT_IPV6_PREFIX): string {
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
  const values = groups.map((group) => Number.parseInt(group, 16));
  if (values.some((value) => !(value >= 0 && value <= 0xffff))) return address;
  return carriedIpv4(values) ?? ipv6Network(values, ipv6Prefix);
}

/** `2001:db8:1::/48`: the groups the prefix reaches into, the last one masked, and the length. */
function ipv6Network(groups: readonly number[], ipv6Prefix: number): string {
  const prefix = Math.min(128, Math.max(1, Math.trunc(ipv6Prefix) || DEFAULT_CLIENT_IPV6_PREFIX));
  const kept = Math.ceil(prefix / 16);
  const network = groups.slice(0, kept).map((value, index) => {
    const bits = Math.min(16, prefix - index * 16);
    return (value & (0xffff << (16 - bits)) & 0xffff).toString(16);
  });
  return kept === 8 ? `${network.join(':')}/${prefix}` : `${network.join(':')}::/${prefix}`;
}

/**
 * The IPv4 client an IPv6 address stands for (its eight 16-bit groups), if any:
 * - NAT64 / SIIT under the well-known prefix 64:ff9b::/96 (RFC 6052): an IPv6-only network's
 *   translator gives every IPv4 client an address in that one /96;
 * - 6to4, 2002:<IPv4>::/48 (RFC 3056): one IPv4 host's whole /48;
 * - IPv4-mapped (::ffff:<IPv4>) and IPv4-compatible (::<IPv4>, RFC 4291 §2.5.5.1; not :: nor ::1).
 * A network-specific NAT64 prefix (64:ff9b:1::/48 and others) places the IPv4 address where its operator
 * chose, so it stays counted by its /64.
 */
function carriedIpv4(groups: readonly number[]): string | undefined {
  if (groups[0] === 0x2002) return dottedIpv4(groups[1]!, groups[2]!);
  const zeros = (from: number, to: number) => groups.slice(from, to).every((value) => value === 0);
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6);
  const mapped = zeros(0, 5) && groups[5] === 0xffff;
  const compatible = zeros(0, 6) && (groups[6] !== 0 || groups[7]! > 1);
  return nat64 || mapped || compatible ? dottedIpv4(groups[6]!, groups[7]!) : undefined;
}

function dottedIpv4(high: number, low: number): string {
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}
