import { AddressRanges } from './address-ranges.js';

const LOOPBACK = AddressRanges.parse(['127.0.0.0/8', '::1/128']);

/**
 * Does a listener bound to `host` accept connections from this machine only? `localhost` and loopback
 * addresses do; the unspecified addresses (0.0.0.0, ::), any other address and any other name do not.
 */
export function isLoopbackHost(host: string): boolean {
  return host.toLowerCase() === 'localhost' || LOOPBACK.has(host);
}
