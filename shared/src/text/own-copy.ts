/**
 * A string that shares no memory with the one it was cut from. V8 makes a cut of 13 characters or more
 * (slice, substring, split, trim) a view that keeps the whole original alive: a short value cut from a
 * header-sized request string and kept after the request (a queued span, a per-client count) would
 * keep the whole header with it.
 */
export function ownCopy(text: string): string {
  return Buffer.from(text, 'utf16le').toString('utf16le');
}

/** V8 copies cuts shorter than this anyway. */
export const SHORTEST_VIEW = 13;
