import type { IncomingHttpHeaders } from 'node:http';
import {
  connectionNamedHeaders,
  HOP_BY_HOP_HEADERS as HOP_BY_HOP_HEADER_NAMES,
} from '@vantageedge/shared/http/hop-by-hop-headers';

export { connectionNamedHeaders };

/** Hop-by-hop header fields (shared/http/hop-by-hop-headers.ts): they concern one connection, never the origin. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set(HOP_BY_HOP_HEADER_NAMES);

/**
 * The request headers as the origin will receive them from the client: without hop-by-hop fields and
 * without the fields the client named in Connection (the proxy drops both). Whatever selects a cached
 * response must be read from this view, or a client could key a response on a header the origin never
 * saw. Returns `headers` itself when nothing is to be removed (the common case).
 */
export function endToEndRequestHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = connectionNamedHeaders(headers.connection);
  let hopByHop = named !== undefined;
  if (!hopByHop)
    for (const name of HOP_BY_HOP_HEADERS)
      if (name !== 'connection' && headers[name] !== undefined) hopByHop = true;
  if (!hopByHop) return headers;
  const view: IncomingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP_HEADERS.has(name) || named?.has(name)) continue;
    view[name] = headers[name];
  }
  return view;
}
