import { BlockList } from 'node:net';
import { parseCidr } from '../domain/route-policies.js';

const MAPPED_IPV4 = '::ffff:';

/**
 * A list of CIDR ranges compiled once per snapshot. IPv4 addresses (also IPv4-mapped IPv6 ones, as a
 * dual-stack socket reports them) are compared as 32-bit numbers against (network, mask) pairs without
 * allocating, then with the IPv6 ranges (which may be IPv4-mapped ones); IPv6 addresses go through
 * node:net's BlockList. Entries that do not parse are skipped
 * (the control plane refuses them).
 */
export class AddressMatcher {
  /** network, mask, network, mask, … (unsigned 32-bit). */
  readonly #ipv4: Uint32Array;
  readonly #ipv6: BlockList | undefined;
  readonly size: number;

  constructor(cidrs: readonly string[]) {
    const ipv4: number[] = [];
    let ipv6: BlockList | undefined;
    for (const text of cidrs) {
      const cidr = parseCidr(text);
      if (cidr === undefined) continue;
      if (cidr.family === 'ipv4') {
        const mask = cidr.prefix === 0 ? 0 : (0xffffffff << (32 - cidr.prefix)) >>> 0;
        ipv4.push((ipv4Number(cidr.network) & mask) >>> 0, mask);
      } else {
        ipv6 ??= new BlockList();
        ipv6.addSubnet(cidr.network, cidr.prefix, 'ipv6');
      }
    }
    this.#ipv4 = Uint32Array.from(ipv4);
    this.#ipv6 = ipv6;
    this.size = ipv4.length / 2 + (ipv6 === undefined ? 0 : 1);
  }

  /** Does a range contain `address` (as the gateway resolved the client: dotted IPv4 or IPv6 text)? */
  has(address: string): boolean {
    let ipv4Text = address;
    let v4 = ipv4Number(address);
    if (v4 < 0 && address.startsWith(MAPPED_IPV4)) {
      ipv4Text = address.slice(MAPPED_IPV4.length);
      v4 = ipv4Number(ipv4Text);
    }
    if (v4 >= 0) {
      const ranges = this.#ipv4;
      for (let i = 0; i < ranges.length; i += 2) {
        if ((v4 & ranges[i + 1]!) >>> 0 === ranges[i]) return true;
      }
      // An IPv6 range may be written in IPv4-mapped form (::ffff:192.0.2.0/120): BlockList compares an
      // IPv4 address with those as the mapped address it is.
      return this.#ipv6?.check(ipv4Text, 'ipv4') === true;
    }
    if (this.#ipv6 === undefined || address.indexOf(':') < 0) return false;
    try {
      return this.#ipv6.check(address, 'ipv6');
    } catch {
      return false;
    }
  }
}

/** Dotted-quad IPv4 → unsigned 32-bit number, or -1 when `text` is not exactly one. */
export function ipv4Number(text: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (code >= 48 && code <= 57) {
      if (digits > 0 && part === 0) return -1; // leading zero: not a canonical address
      part = part * 10 + (code - 48);
      if (++digits > 3 || part > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}
