import type { IncomingMessage } from 'node:http';

/**
 * Node truncates HTTP/1.1 headers beyond server.maxHeadersCount silently (and Node 24 turns an overflow
 * into a parse error that cannot say which limit was hit), and HTTP/2 resets a stream past
 * maxHeaderListPairs; so every listener's own bound sits one above the largest GATEWAY_MAX_HEADERS_COUNT
 * (2,000) and the gateway answers `too_many_headers` itself, the same for every protocol.
 */
export const PARSER_MAX_HEADER_LINES = 2_001;
/** HTTP/2's bound counts pseudo-headers (:method, :scheme, :authority, :path) as pairs too. */
export const HTTP2_MAX_HEADER_PAIRS = PARSER_MAX_HEADER_LINES + 4;

/** Header lines of a request; HTTP/2's pseudo-headers are not header lines. */
export function headerLineCount(req: IncomingMessage): number {
  const raw = req.rawHeaders;
  if (req.httpVersionMajor !== 2) return raw.length / 2;
  let lines = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]?.charCodeAt(0) !== 58 /* ':' */) lines++;
  return lines;
}
