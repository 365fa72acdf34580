import { hash } from 'node:crypto';
import { normalizePath } from '../routing/normalize-path.js';

/**
 * Purge by URL prefix rides on purge by tag: every stored response carries an implicit tag per
 * ancestor path segment (`/a`, `/a/b`, … up to PATH_TAG_MAX_DEPTH segments), so purging the prefix
 * `/a/` is a tag purge of the tag of `/a` — same Redis sets, same replica message, same soft purge.
 *
 * Path tags are `path <digest>`: bounded in length whatever the path, and the space keeps them apart
 * from the tags origins send (split on whitespace) and admins purge (no whitespace allowed).
 */

/** Paths are tagged down to this many segments; a deeper prefix cannot be purged on its own. */
export const PATH_TAG_MAX_DEPTH = 8;
/** At most this many prefixes per purge request, each at most PATH_PREFIX_MAX_LENGTH characters. */
export const PATH_PREFIXES_MAX = 64;
export const PATH_PREFIX_MAX_LENGTH = 1024;

function pathTag(segmentPath: string): string {
  return `path ${hash('sha256', segmentPath, 'base64url').slice(0, 22)}`;
}

function segmentsOf(normalizedPath: string): string[] {
  return normalizedPath.split('/').filter((segment) => segment !== '');
}

/**
 * The implicit tags of a response stored for the (router-normalised) request path: one per ancestor
 * segment, `/products/a/b` → the tags of `/products`, `/products/a`, `/products/a/b`.
 */
export function pathTags(normalizedPath: string): string[] {
  const segments = segmentsOf(normalizedPath).slice(0, PATH_TAG_MAX_DEPTH);
  const tags: string[] = [];
  let prefix = '';
  for (const segment of segments) {
    prefix += `/${segment}`;
    tags.push(pathTag(prefix));
  }
  return tags;
}

export type ParsedPathPrefix = { ok: true; prefix: string; tag: string } | { ok: false; issue: string };

/**
 * Reads a purge prefix as the router reads a request path (percent-escapes normalised, non-ASCII
 * characters UTF-8 encoded) and refuses what could only be a mistake: a query, dot segments, empty
 * segments, the root (that is the whole tenant) or more segments than responses are tagged with.
 * `/products` and `/products/` are the same prefix: the segment `products` and everything below it.
 */
export function parsePathPrefix(raw: string): ParsedPathPrefix {
  if (!raw.startsWith('/')) return { ok: false, issue: 'a prefix is a path: it starts with /' };
  if (raw.includes('?')) return { ok: false, issue: 'a prefix is a path without a query (no ?)' };
  const body = raw.endsWith('/') ? raw.slice(0, -1) : raw;
  const rawSegments = body.split('/').slice(1);
  if (rawSegments.length === 0 || (rawSegments.length === 1 && rawSegments[0] === '')) {
    return { ok: false, issue: 'the root prefix is the whole tenant: purge without a body instead' };
  }
  if (rawSegments.some((segment) => segment === '')) {
    return { ok: false, issue: 'a prefix has no empty segments (//)' };
  }
  if (rawSegments.some((segment) => segment === '.' || segment === '..')) {
    return { ok: false, issue: 'a prefix has no . or .. segments' };
  }
  const normalized = normalizePath(Buffer.from(body, 'utf8').toString('latin1'));
  if (!normalized.ok) {
    return { ok: false, issue: `not a path the gateway accepts (${normalized.reason.replaceAll('_', ' ')})` };
  }
  const segments = segmentsOf(normalized.path);
  // Escaped dots (`%2E%2E`) are dot segments once decoded.
  if (segments.length !== rawSegments.length) return { ok: false, issue: 'a prefix has no . or .. segments' };
  if (segments.length > PATH_TAG_MAX_DEPTH) {
    return { ok: false, issue: `a prefix has at most ${PATH_TAG_MAX_DEPTH} segments` };
  }
  const prefix = `/${segments.join('/')}`;
  return { ok: true, prefix, tag: pathTag(prefix) };
}
