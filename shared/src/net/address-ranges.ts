import { BlockList } from 'node:net';
import { z } from 'zod';
import { commaList } from '../settings/common-settings.js';
import { type Cidr, canonicalAddress, parseCidr } from './ip-address.js';

/**
 * A list of CIDR ranges matched with node:net's BlockList. An IPv4-mapped IPv6 address
 * (`::ffff:127.0.0.1`) is matched as the IPv4 address it carries, whatever the list says.
 */
export class AddressRanges {
  readonly cidrs: readonly Cidr[];
  readonly #all = new BlockList();

  constructor(cidrs: readonly Cidr[]) {
    this.cidrs = cidrs;
    for (const cidr of cidrs) this.#all.addSubnet(cidr.network, cidr.prefix, cidr.family);
  }

  static parse(list: readonly string[]): AddressRanges {
    return new AddressRanges(
      list.map((text) => {
        const cidr = parseCidr(text);
        if (cidr === undefined) throw new Error(`not a CIDR range: ${text}`);
        return cidr;
      }),
    );
  }

  /** Does any range contain `address` (any spelling a socket or a URL parser produces)? */
  has(address: string): boolean {
    const canonical = canonicalAddress(address);
    if (canonical === undefined) return false;
    return this.#all.check(canonical.address, canonical.family);
  }

  /** The first range (as written) that contains `address`, for messages. */
  rangeOf(address: string): string | undefined {
    const canonical = canonicalAddress(address);
    if (canonical === undefined || !this.#all.check(canonical.address, canonical.family)) return undefined;
    for (const cidr of this.cidrs) {
      const single = new BlockList();
      single.addSubnet(cidr.network, cidr.prefix, cidr.family);
      if (single.check(canonical.address, canonical.family)) return cidr.text;
    }
    return undefined;
  }
}

/** CIDR ranges (or single addresses), each checked. */
export const cidrList = z.array(
  z.string().refine((text) => parseCidr(text) !== undefined, {
    error: (issue) =>
      `must be a comma-separated list of CIDR ranges such as 10.0.0.0/8,fd00::/8 (${String(issue.input)} is not one)`,
  }),
);

/** A setting holding a comma-separated list of CIDR ranges (or single addresses). */
export const cidrListSetting = commaList.pipe(cidrList);
