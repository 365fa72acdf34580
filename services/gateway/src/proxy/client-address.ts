import type { IncomingMessage } from 'node:http';
import { AddressRanges } from '@vantageedge/shared/net/address-ranges';
import { canonicalAddress } from '@vantageedge/shared/net/ip-address';

/**
 * Who the client is, as far as the gateway can tell. The peer (the socket's remote address) is a
 * fact; X-Forwarded-For is only believed while it is written by trusted proxies: walking from the
 * peer leftwards, every address in GATEWAY_TRUSTED_PROXIES is a proxy and the first one that is not
 * is the client (the usual semantics of nginx `real_ip_recursive` and Envoy's `xff_trusted_cidrs`).
 * A client can prepend anything to the header, so the leftmost entry is never trusted by itself.
 */
export interface ClientAddress {
  /** For rate limits (`scope: ip`), consistent hashing, X-Real-IP and the access log. */
  readonly clientIp: string;
  /** The address that connected to the gateway. */
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
    const peerIp = peerAddressOf(req);
    const trusted = this.#trusted;
    if (trusted === undefined || !trusted.has(peerIp))
      return { clientIp: peerIp, peerIp, peerTrusted: false };
    const header = req.headers['x-forwarded-for'];
    let clientIp = peerIp;
    if (header !== undefined) {
      const entries = (Array.isArray(header) ? header.join(',') : header).split(',');
      for (let i = entries.length - 1; i >= 0; i--) {
        const address = forwardedAddress(entries[i]!);
        // Something that is not an address ends the chain: the last trusted hop is all we know.
        if (address === undefined) break;
        clientIp = address;
        if (!trusted.has(address)) break;
      }
    }
    return { clientIp, peerIp, peerTrusted: true };
  }
}

export function peerAddressOf(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
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

/** What GATEWAY_TRUST_PROXY=true (deprecated) stands for: private and loopback ranges. */
export const PRIVATE_PROXY_RANGES: readonly string[] = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '127.0.0.0/8',
  '::1/128',
  'fc00::/7',
];

/**
 * The trusted proxy ranges the settings ask for, and a warning for the deprecated boolean:
 * GATEWAY_TRUSTED_PROXIES wins; GATEWAY_TRUST_PROXY=true alone means the private ranges.
 */
export function trustedProxiesFromSettings(settings: {
  GATEWAY_TRUSTED_PROXIES: readonly string[];
  GATEWAY_TRUST_PROXY?: boolean | undefined;
}): { ranges: readonly string[]; warning: string | undefined } {
  if (settings.GATEWAY_TRUST_PROXY !== true)
    return { ranges: settings.GATEWAY_TRUSTED_PROXIES, warning: undefined };
  if (settings.GATEWAY_TRUSTED_PROXIES.length > 0) {
    return {
      ranges: settings.GATEWAY_TRUSTED_PROXIES,
      warning: 'GATEWAY_TRUST_PROXY is deprecated and ignored: GATEWAY_TRUSTED_PROXIES is set; remove it',
    };
  }
  return {
    ranges: PRIVATE_PROXY_RANGES,
    warning: `GATEWAY_TRUST_PROXY is deprecated: trusting proxies in ${PRIVATE_PROXY_RANGES.join(',')}; set GATEWAY_TRUSTED_PROXIES to your load balancers' addresses instead`,
  };
}
