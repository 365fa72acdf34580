import type { OutgoingHttpHeaders } from 'node:http';
import { singleHeader } from '@vantageedge/shared/http/header-values';
import { type EncodedSlashPolicy, normalizePath } from '@vantageedge/shared/routing/normalize-path';

/** Methods whose requests never change the resource (RFC 9110 §9.2.1); every other method is unsafe. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

export function isUnsafeMethod(method: string): boolean {
  return !SAFE_METHODS.has(method.toUpperCase());
}

/** A non-error response to an unsafe method invalidates (RFC 9111 §4.4): 2xx and 3xx. */
export function invalidatesOnStatus(status: number): boolean {
  return status >= 200 && status < 400;
}

/** A URI the response names, on the request's host: its path as the router matches it, and its query. */
export interface InvalidationTarget {
  readonly path: string;
  /** With its leading "?", or ''. */
  readonly query: string;
}

/**
 * The URIs in a response's `Location` and `Content-Location` that a cache must also invalidate after an
 * unsafe method (RFC 9111 §4.4). Relative references are resolved against the request URI. Only URIs on
 * the request's own host count (a response must not invalidate another host's entries); an absolute URI
 * with another host, a value that does not parse and a path the router would refuse are ignored. Paths
 * are normalised like request paths, so they name the entries their GETs were stored under.
 */
export function invalidationTargets(
  request: { readonly authority: string | undefined; readonly path: string; readonly query: string },
  headers: OutgoingHttpHeaders,
  encodedSlashes: EncodedSlashPolicy,
): InvalidationTarget[] {
  if (request.authority === undefined) return [];
  let base: URL;
  try {
    base = new URL(`http://${request.authority}${request.path}${request.query}`);
  } catch {
    return [];
  }
  const targets: InvalidationTarget[] = [];
  for (const name of ['location', 'content-location']) {
    const value = singleHeader(headerValue(headers, name));
    if (value === undefined) continue;
    const target = sameHostTarget(value.trim(), base, encodedSlashes);
    if (target !== undefined && !targets.some((known) => known.path === target.path)) targets.push(target);
  }
  return targets;
}

function sameHostTarget(
  reference: string,
  base: URL,
  encodedSlashes: EncodedSlashPolicy,
): InvalidationTarget | undefined {
  let resolved: URL;
  try {
    resolved = new URL(reference, base);
  } catch {
    return undefined;
  }
  if (resolved.protocol !== 'http:' && resolved.protocol !== 'https:') return undefined;
  // The host, not the port or scheme: the same resource behind TLS or another listener (RFC 9111 §4.4).
  if (resolved.hostname !== base.hostname) return undefined;
  const normalized = normalizePath(resolved.pathname, encodedSlashes);
  if (!normalized.ok) return undefined;
  return { path: normalized.path, query: resolved.search };
}

/** Response header names may come in any case from a stage; node's own lists are lower-case. */
function headerValue(headers: OutgoingHttpHeaders, name: string): OutgoingHttpHeaders[string] {
  if (headers[name] !== undefined) return headers[name];
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}
