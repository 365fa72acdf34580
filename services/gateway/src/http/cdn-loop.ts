import type { IncomingHttpHeaders } from 'node:http';
import { type HeaderValue, headerList } from '@vantageedge/shared/http/header-values';

/**
 * CDN-Loop (RFC 8586): every CDN or proxy a request passes appends its own id, and none may remove or
 * change what others wrote. The gateway's id is `vantageedge`: a request that comes back to the platform
 * (an origin on the platform's own public name, another replica behind the load balancer) carries it
 * once for each pass, whichever replica it reaches, so loops are seen across replicas.
 */
export const PLATFORM_CDN_ID = 'vantageedge';

/** GATEWAY_MAX_LOOP_HOPS' default (settings.ts says why). */
export const DEFAULT_MAX_LOOP_HOPS = 2;

export const LOOP_DETECTED_MESSAGE =
  'the request has passed through the gateway too many times (CDN-Loop): the route’s origin leads back to the platform';

/** How many passes through the platform the request's CDN-Loop records: its `vantageedge` entries. */
export function platformPasses(headers: IncomingHttpHeaders): number {
  const value = headers['cdn-loop'];
  if (value === undefined) return 0;
  if (typeof value === 'string') return countEntries(value);
  let passes = 0;
  for (const line of value as readonly string[]) passes += countEntries(line);
  return passes;
}

/** The CDN-Loop the origin gets: the client's entries as sent, then the gateway's. */
export function withPlatformEntry(value: HeaderValue): string {
  const prior = headerList(value);
  return prior === undefined ? PLATFORM_CDN_ID : `${prior}, ${PLATFORM_CDN_ID}`;
}

/**
 * Entries of a CDN-Loop line whose cdn-id is the gateway's, parameters or not (`vantageedge; x=1`),
 * compared case-insensitively. Read in place: no string is made for the entries.
 */
function countEntries(line: string): number {
  let passes = 0;
  let at = 0;
  while (at < line.length) {
    while (isWhitespace(line.charCodeAt(at))) at++;
    if (isPlatformId(line, at)) passes++;
    const next = line.indexOf(',', at);
    if (next < 0) break;
    at = next + 1;
  }
  return passes;
}

function isPlatformId(line: string, at: number): boolean {
  const end = at + PLATFORM_CDN_ID.length;
  if (end > line.length) return false;
  for (let i = 0; i < PLATFORM_CDN_ID.length; i++) {
    // ASCII letters only: `| 0x20` lower-cases them.
    if ((line.charCodeAt(at + i) | 0x20) !== PLATFORM_CDN_ID.charCodeAt(i)) return false;
  }
  const after = line.charCodeAt(end);
  return end === line.length || after === 44 /* , */ || after === 59 /* ; */ || isWhitespace(after);
}

function isWhitespace(code: number): boolean {
  return code === 32 || code === 9;
}
