import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { testCacheEntry } from './testing/test-cache-entry.js';
import { createEntryWriter } from './write-entry.js';

/** What a client receives for a stored entry: the status and whether a body came with it. */
function answer(entry: ReturnType<typeof testCacheEntry>, request: IncomingHttpHeaders) {
  const sent = { statusCode: 200, body: undefined as Buffer | undefined };
  const res = {
    set statusCode(status: number) {
      sent.statusCode = status;
    },
    get statusCode() {
      return sent.statusCode;
    },
    setHeader() {},
    writeHead() {},
    end(body?: Buffer) {
      sent.body = body;
    },
  } as unknown as ServerResponse;
  createEntryWriter(() => entry.storedAt)(res, entry, 'HIT', 'GET', request);
  return sent;
}

/**
 * If-None-Match: `*` is false when a current representation exists (RFC 9110 §13.1.2): a stored 200 is
 * one, whether the origin gave it an ETag or only a Last-Modified.
 */
describe("a client's If-None-Match: * answered from a stored entry", () => {
  const withLastModifiedOnly = testCacheEntry({
    headers: [
      ['content-type', 'text/plain'],
      ['last-modified', 'Sun, 06 Nov 1994 08:49:37 GMT'],
    ],
  });

  it('is a 304 without a body for an entry without an ETag', () => {
    const sent = answer(withLastModifiedOnly, { 'if-none-match': '*' });
    expect(sent.statusCode).toBe(304);
    expect(sent.body).toBeUndefined();
  });

  it('is a 304 for an entry with an ETag, and a list of other tags is not', () => {
    const tagged = testCacheEntry({ headers: [['etag', '"v1"']] });
    expect(answer(tagged, { 'if-none-match': '*' }).statusCode).toBe(304);
    expect(answer(tagged, { 'if-none-match': '"v2", "v3"' }).statusCode).toBe(200);
    expect(answer(withLastModifiedOnly, { 'if-none-match': '"v2"' }).statusCode).toBe(200);
  });

  it('is the stored 404 itself: a 404 is no representation of the resource', () => {
    const missing = testCacheEntry({ status: 404, headers: [['content-type', 'text/plain']] });
    expect(answer(missing, { 'if-none-match': '*' }).statusCode).toBe(404);
  });
});
