import { networkInterfaces } from 'node:os';
import { commaList } from '../settings/common-settings.js';
import { AddressRanges, cidrList } from './address-ranges.js';
import { canonicalAddress, ipv4CompatibleAddress, nat64Ipv4Address, urlTarget } from './ip-address.js';

/**
 * Which addresses the platform will connect to on a tenant's behalf (origin targets, health checks,
 * OIDC JWKS). Two rules:
 *  - addresses in ORIGIN_BLOCKED_CIDRS are refused: by default loopback, "this host" (0.0.0.0/8, ::),
 *    link-local (169.254.0.0/16 — cloud metadata services — and fe80::/10), the metadata services
 *    and host services elsewhere (the IPv6 ones of AWS, Google Cloud, Oracle Cloud, Akamai and
 *    Scaleway, Alibaba Cloud's 100.100.100.200, Azure's 168.63.129.16, Oracle's 192.0.0.192), and
 *    their IPv4-mapped and NAT64 IPv6 forms. Private ranges (10/8, 172.16/12, 192.168/16) are allowed: origins usually live there.
 *    An IPv4-mapped, IPv4-compatible or NAT64 (64:ff9b::/96, a /96 under 64:ff9b:1::/48) IPv6 address
 *    is judged by the IPv4 address it carries too.
 *  - the service's own listeners (bound host:port; a 0.0.0.0 or :: bind means every local address at
 *    that port) are refused whatever the setting says, so a tenant can never reach an admin port.
 * Literal addresses are checked when configured (the control plane's commands) and every address
 * is checked again when a connection is made, after DNS resolution (the gateway's connector).
 */

export const DEFAULT_ORIGIN_BLOCKED_CIDRS: readonly string[] = [
  '127.0.0.0/8',
  '::1/128',
  '0.0.0.0/8',
  '::/128',
  '169.254.0.0/16',
  'fe80::/10',
  '::ffff:127.0.0.0/104',
  '::ffff:0.0.0.0/104',
  '::ffff:169.254.0.0/112',
  // Cloud metadata and host services outside link-local: the IPv6 metadata endpoints of AWS, Google
  // Cloud, Oracle Cloud, Akamai (Linode) and Scaleway and AWS's EKS Pod Identity Agent (credentials),
  // each the IPv6 twin of a link-local service above; Alibaba Cloud's metadata, Azure's WireServer,
  // Oracle Cloud's metadata alias.
  'fd00:ec2::254/128',
  'fd00:ec2::23/128',
  'fd20:ce::254/128',
  'fd00:c1::a9fe:a9fe/128',
  'fd00:a9fe:a9fe::1/128',
  'fd00:42::42/128',
  '100.100.100.200/32',
  '::ffff:100.100.100.200/128',
  '168.63.129.16/32',
  '::ffff:168.63.129.16/128',
  '192.0.0.192/32',
  '::ffff:192.0.0.192/128',
  // The well-known NAT64 prefix (RFC 6052) and the local-use one (RFC 8215) in front of the IPv4
  // ranges above.
  '64:ff9b::7f00:0/104',
  '64:ff9b::/104',
  '64:ff9b::a9fe:0/112',
  '64:ff9b::6464:64c8/128',
  '64:ff9b::a83f:8110/128',
  '64:ff9b::c000:c0/128',
  '64:ff9b:1::7f00:0/104',
  '64:ff9b:1::/104',
  '64:ff9b:1::a9fe:0/112',
  '64:ff9b:1::6464:64c8/128',
  '64:ff9b:1::a83f:8110/128',
  '64:ff9b:1::c000:c0/128',
];

const LOOPBACK = new Set(['127.0.0.0/8', '::1/128', '::ffff:127.0.0.0/104']);

/**
 * The default without the loopback ranges: what `make dev` and the tests use, whose origins are
 * local servers on 127.0.0.1. Never for production.
 */
export const ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK: readonly string[] = DEFAULT_ORIGIN_BLOCKED_CIDRS.filter(
  (cidr) => !LOOPBACK.has(cidr),
);

/** In ORIGIN_BLOCKED_CIDRS, stands for DEFAULT_ORIGIN_BLOCKED_CIDRS: `default,10.0.0.0/8` blocks more. */
const DEFAULT_RANGES_ENTRY = 'default';

/** ORIGIN_BLOCKED_CIDRS, read by the control plane and every gateway. */
export const originBlockedCidrsSetting = commaList
  .transform((entries) =>
    entries.flatMap((entry) =>
      entry.toLowerCase() === DEFAULT_RANGES_ENTRY ? DEFAULT_ORIGIN_BLOCKED_CIDRS : [entry],
    ),
  )
  .pipe(cidrList)
  .default([...DEFAULT_ORIGIN_BLOCKED_CIDRS]);

export interface Listener {
  /** The bound interface as configured (0.0.0.0 and :: mean every local address). */
  readonly host: string;
  readonly port: number;
}

const ANY_INTERFACE = new Set(['0.0.0.0', '::']);
/** Connecting to 0.0.0.0 or :: reaches this machine (Linux treats it as loopback). */
const UNSPECIFIED = ANY_INTERFACE;
const ALWAYS_LOCAL = AddressRanges.parse(['127.0.0.0/8', '::1/128', '0.0.0.0/32', '::/128']);

export class OriginAddressPolicy {
  readonly blocked: AddressRanges;
  readonly #listeners: Listener[] = [];

  constructor(blockedCidrs: readonly string[], listeners: readonly Listener[] = []) {
    this.blocked = AddressRanges.parse(blockedCidrs);
    for (const listener of listeners) this.addOwnListener(listener);
  }

  /** Registers one of this process's listeners (after it is bound, so port 0 is the real port). */
  addOwnListener(listener: Listener): void {
    if (listener.port === 0) return;
    const canonical = canonicalAddress(listener.host);
    this.#listeners.push({ host: canonical?.address ?? listener.host, port: listener.port });
  }

  /** Why a connection to `address`:`port` is refused, or undefined when it is allowed. */
  refusal(address: string, port: number): string | undefined {
    const canonical = canonicalAddress(address);
    if (canonical === undefined) return `${address} is not an IP address`;
    // An IPv4-compatible address is judged by the IPv4 address it carries as well: Linux's sit0 tunnel
    // device, once up, holds one for each IPv4 address of the host (::127.0.0.1 too).
    const carried = canonical.family === 'ipv6' ? ipv4CompatibleAddress(canonical.address) : undefined;
    // So is a NAT64 address, which a translator turns into the IPv4 address it carries.
    const translated = canonical.family === 'ipv6' ? nat64Ipv4Address(canonical.address) : undefined;
    const range =
      this.blocked.rangeOf(canonical.address) ??
      (carried === undefined ? undefined : this.blocked.rangeOf(carried)) ??
      (translated === undefined ? undefined : this.blocked.rangeOf(translated));
    if (range !== undefined)
      return `${canonical.address} is in the blocked range ${range} (ORIGIN_BLOCKED_CIDRS)`;
    if (
      this.#isOwnListener(canonical.address, port) ||
      (carried !== undefined && this.#isOwnListener(carried, port)) ||
      (translated !== undefined && this.#isOwnListener(translated, port))
    )
      return `${canonical.address}:${port} is one of the platform's own listeners`;
    return undefined;
  }

  /**
   * Why an http(s) URL is refused as configured, or undefined. Only literal addresses can be judged
   * here; a host name is judged by the address it resolves to when connecting.
   */
  urlRefusal(url: string): string | undefined {
    const target = urlTarget(url);
    if (target?.address === undefined) return undefined;
    return this.refusal(target.address.address, target.port);
  }

  #isOwnListener(address: string, port: number): boolean {
    for (const listener of this.#listeners) {
      if (listener.port !== port) continue;
      // A listener bound by name (e.g. "localhost") is treated like one on every local address.
      const anyLocal = ANY_INTERFACE.has(listener.host) || canonicalAddress(listener.host) === undefined;
      if (anyLocal ? isLocalAddress(address) : listener.host === address || UNSPECIFIED.has(address))
        return true;
    }
    return false;
  }
}

/** Loopback, unspecified, or an address of one of this machine's interfaces. */
function isLocalAddress(address: string): boolean {
  if (ALWAYS_LOCAL.has(address)) return true;
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (canonicalAddress(entry.address)?.address === address) return true;
    }
  }
  return false;
}
