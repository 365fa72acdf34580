import { AddressRanges } from './address-ranges.js';
import { canonicalAddress, clientCountingKey } from './ip-address.js';

export interface ClientSlotLimit {
  /** Slots one client address may hold at once (0: no limit). */
  readonly limit: number;
  /** Load balancers carry many clients' traffic, so their addresses are not limited. */
  readonly trustedProxies: readonly string[];
  /** The network an IPv6 client is counted by (default: its /64). */
  readonly ipv6Prefix?: number | undefined;
}

/**
 * What one client address holds of a replica at once, counted in slots (an IPv6 client by its /64 or
 * `ipv6Prefix`, as every per-client count): the listeners take one per open connection, and the HTTP/2 listeners one
 * more per request a session carries beside its first, so an address holds as much over HTTP/2 as
 * over HTTP/1.1, where a connection carries one request at a time.
 */
export class ClientSlots {
  readonly limit: number;
  readonly #trusted: AddressRanges | undefined;
  readonly #ipv6Prefix: number | undefined;
  readonly #held = new Map<string, number>();

  constructor(options: ClientSlotLimit) {
    this.limit = options.limit;
    this.#ipv6Prefix = options.ipv6Prefix;
    this.#trusted =
      options.trustedProxies.length === 0 ? undefined : AddressRanges.parse(options.trustedProxies);
  }

  /** The key a peer's slots are counted under; undefined when the peer is not limited. */
  clientOf(peer: string | undefined): string | undefined {
    if (this.limit <= 0 || peer === undefined || this.#trusted?.has(peer)) return undefined;
    return clientCountingKey(canonicalAddress(peer)?.address ?? peer, this.#ipv6Prefix);
  }

  /** Takes a slot of `client`; false (nothing taken) when it holds the limit already. */
  take(client: string): boolean {
    const held = this.#held.get(client) ?? 0;
    if (held >= this.limit) return false;
    this.#held.set(client, held + 1);
    return true;
  }

  release(client: string): void {
    const left = (this.#held.get(client) ?? 1) - 1;
    if (left > 0) this.#held.set(client, left);
    else this.#held.delete(client);
  }
}
