import type { IncomingHttpHeaders } from 'node:http';

/**
 * The host a request is for: HTTP/1.1's Host header, or HTTP/2's `:authority` pseudo-header (which
 * HTTP/2 clients send instead of Host; node's compatibility API does not copy it into `host`).
 */
export function requestAuthority(headers: IncomingHttpHeaders): string | undefined {
  const host = headers.host;
  if (host !== undefined) return host;
  const authority = headers[':authority'];
  return typeof authority === 'string' ? authority : undefined;
}
