import type { IncomingHttpHeaders } from 'node:http';
import { singleHeader } from '@vantageedge/shared/http/header-values';

/**
 * The host a request is for: HTTP/1.1's Host header, or HTTP/2's `:authority` pseudo-header (which
 * HTTP/2 clients send instead of Host; node's compatibility API does not copy it into `host`).
 */
export function requestAuthority(headers: IncomingHttpHeaders): string | undefined {
  return singleHeader(headers.host) ?? singleHeader(headers[':authority']);
}
