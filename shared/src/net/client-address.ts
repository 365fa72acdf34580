import type { IncomingMessage } from 'node:http';
import { ownCopy, SHORTEST_VIEW } from '../text/own-copy.js';
import { AddressRanges } from './address-ranges.js';
import { canonicalAddress } from './ip-address.js';

/**
 * Who the client is, as far as a listener can tell. The peer (the socket's remote address) is a
 * fact; X-Forwarded-For is only believed while it is written by trusted proxies: walking from the
 * peer leftwards, every address in the trusted proxies (GATEWAY_TRUSTED_PROXIES,
 * CONTROL_PLANE_TRUSTED_PROXIES) is a proxy and the first one that is not
 * is the client (the usual semantics of nginx `real_ip_recursive` and Envoy's `xff_trusted_cidrs`).
 * A client can prepend anything to the header, so the leftmost entry is never trusted by itself.
 */
export interface ClientAddress {
  /** The gateway's rate limits (`scope: ip`), consistent hashing, X-Real-IP and access log; auth-failure limits. */
  readonly clientIp: string;
  /** The address that connected to the listener. */
  readonly peerIp: string;
  /** The peer is a trusted proxy: its forwarding headers are kept and appended to. */
  readonly peerTrusted: boolean;
}

export class ClientAddressResolver {
  readonly #trusted: AddressRanges | undefined;

  constructor(trustedProxies: readonly string[]) {
    this.#trusted = trustedProxies.length === 0 ? undefined : AddressRanges.parse(trustedProxies);
  }

  resolve(req: IncomingMessage): ClientAddress {
    return this.fromPeer(peerAddressOf(req), req.headers['x-forwarded-for']);
  }

  /** The same decision from the peer's address (as peerAddressOf spells it) and its X-Forwarded-For field. */
  fromPeer(peerIp: string, forwardedFor: string | string[] | undefined): ClientAddress {
    const trusted = this.#trusted;
    if (trusted === undefined || !trusted.has(peerIp))
      return { clientIp: peerIp, peerIp, peerTrusted: false };
    let clientIp = peerIp;
    if (forwardedFor !== undefined) {
      const entries = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
      for (let i = entries.length - 1; i >= 0; i--) {
        const address = forwardedAddress(entries[i]!);
        // Something that is not an address ends the chain: the last trusted hop is all we know.
        if (address === undefined) break;
        clientIp = address;
        if (!trusted.has(address)) break;
      }
      // Counted and remembered per client long after the request: it must not keep the header alive.
      if (clientIp !== peerIp && clientIp.length >= SHORTEST_VIEW) clientIp = ownCopy(clientIp);
    }
    return { clientIp, peerIp, peerTrusted: true };
  }
}

export function peerAddressOf(req: IncomingMessage): string {
  return socketPeerAddress(req.socket) ?? '';
}

/** A connection's remote address, an IPv4 peer of a dual-stack (`::`) listener as IPv4 (`::ffff:` dropped). */
export function socketPeerAddress(
  socket: { readonly remoteAddress?: string | undefined } | undefined,
): string | undefined {
  const address = socket?.remoteAddress;
  return address?.startsWith('::ffff:') ? address.slice(7) : address;
}

/** One X-Forwarded-For entry: `203.0.113.9`, `2001:db8::1`, `[2001:db8::1]:443` or `203.0.113.9:443`. */
function forwardedAddress(entry: string): string | undefined {
  let text = entry.trim();
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return undefined;
    text = text.slice(1, close);
  } else if (text.indexOf(':') === text.lastIndexOf(':') && text.includes(':')) {
    text = text.slice(0, text.indexOf(':')); // IPv4 with a port
  }
  return canonicalAddress(text)?.address;
}
