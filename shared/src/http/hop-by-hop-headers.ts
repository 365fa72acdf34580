/**
 * Hop-by-hop fields (RFC 9110 §7.6.1) and those HTTP/2 forbids (RFC 9113 §8.2.2): they describe one
 * connection, never the resource. A proxy drops them both ways, a cache never stores them, a route
 * never sets them (node refuses to send them to an HTTP/2 client; a proxy credential is for the hop it
 * was sent on).
 */
export const HOP_BY_HOP_HEADERS: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // HTTP/1.1's upgrade to h2c (RFC 7540 §3.2.1).
  'http2-settings',
];
