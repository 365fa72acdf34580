import {
  connectionNamedHeaders,
  endToEndRequestHeaders,
  HOP_BY_HOP_HEADERS as HOP_BY_HOP_HEADER_NAMES,
} from '@vantageedge/shared/http/hop-by-hop-headers';

export { connectionNamedHeaders, endToEndRequestHeaders };

/** Hop-by-hop header fields (shared/http/hop-by-hop-headers.ts): they concern one connection, never the origin. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set(HOP_BY_HOP_HEADER_NAMES);
