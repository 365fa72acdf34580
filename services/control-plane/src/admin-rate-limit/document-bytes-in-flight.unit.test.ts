import { EventEmitter } from 'node:events';
import type { Request, Response } from 'express';
import { describe, expect, it } from 'vitest';
import { limitDocumentBytesInFlight } from './document-bytes-in-flight.js';

const DOCUMENT_LIMIT = 1000;

function upload(headers: Record<string, string>) {
  const req = { get: (name: string) => headers[name.toLowerCase()] } as unknown as Request;
  const res = Object.assign(new EventEmitter(), {
    headersSent: false,
    end: () => res,
  }) as unknown as Response;
  return { req, res, answer: () => res.end() };
}

const refusal = (hold: () => void): string | undefined => {
  try {
    hold();
    return undefined;
  } catch (error) {
    return (error as { issues: Array<{ field: string }> }).issues[0]?.field;
  }
};

describe('document bytes in flight', () => {
  it('holds a body of unknown length as the document limit, and none of one announced past it (refused unread as 413)', () => {
    const held: number[] = [];
    const limit = limitDocumentBytesInFlight(4 * DOCUMENT_LIMIT, DOCUMENT_LIMIT, (bytes) => held.push(bytes));
    const chunked = upload({ 'transfer-encoding': 'chunked' });
    limit.hold('tenant-a', 'write', chunked.req, chunked.res);
    expect(held.at(-1)).toBe(DOCUMENT_LIMIT);
    const tooLarge = upload({ 'content-length': String(100 * DOCUMENT_LIMIT) });
    expect(refusal(() => limit.hold('tenant-b', 'write', tooLarge.req, tooLarge.res))).toBeUndefined();
    expect(held.at(-1)).toBe(DOCUMENT_LIMIT);
    chunked.answer();
    expect(held.at(-1)).toBe(0);
  });

  it('holds a compressed body as the document limit, whatever its Content-Length says', () => {
    const held: number[] = [];
    const limit = limitDocumentBytesInFlight(4 * DOCUMENT_LIMIT, DOCUMENT_LIMIT, (bytes) => held.push(bytes));
    for (const encoding of ['gzip', 'br', 'Deflate']) {
      const compressed = upload({ 'content-length': '10', 'content-encoding': encoding });
      limit.hold(`tenant-${encoding}`, 'write', compressed.req, compressed.res);
      expect(held.at(-1)).toBe(DOCUMENT_LIMIT);
      compressed.answer();
    }
    const identity = upload({ 'content-length': '10', 'content-encoding': 'identity' });
    limit.hold('tenant-identity', 'write', identity.req, identity.res);
    expect(held.at(-1)).toBe(10);
  });

  it('lets one document in when none is held, whatever its size; a tenant’s second only within its half', () => {
    const limit = limitDocumentBytesInFlight(DOCUMENT_LIMIT / 2, DOCUMENT_LIMIT);
    const large = upload({ 'content-length': String(DOCUMENT_LIMIT) });
    expect(refusal(() => limit.hold('tenant-a', 'write', large.req, large.res))).toBeUndefined();
    const second = upload({ 'content-length': '10' });
    expect(refusal(() => limit.hold('tenant-a', 'write', second.req, second.res))).toBe(
      'tenant_document_bytes_in_flight',
    );
    expect(refusal(() => limit.hold('tenant-b', 'write', second.req, second.res))).toBe(
      'document_bytes_in_flight',
    );
    large.answer();
    large.answer();
    expect(refusal(() => limit.hold('tenant-b', 'write', second.req, second.res))).toBeUndefined();
  });

  it('holds a tenant’s readers’ documents to half its share, the rest for its writers; answered, they give it back', () => {
    const limit = limitDocumentBytesInFlight(4 * DOCUMENT_LIMIT, DOCUMENT_LIMIT);
    const first = upload({ 'content-length': String(DOCUMENT_LIMIT) });
    expect(refusal(() => limit.hold('tenant-a', 'read', first.req, first.res))).toBeUndefined();
    const second = upload({ 'content-length': '10' });
    expect(refusal(() => limit.hold('tenant-a', 'read', second.req, second.res))).toBe(
      'tenant_document_bytes_in_flight',
    );
    const writers = upload({ 'content-length': String(DOCUMENT_LIMIT) });
    expect(refusal(() => limit.hold('tenant-a', 'write', writers.req, writers.res))).toBeUndefined();
    // Another tenant's readers have their own half.
    expect(refusal(() => limit.hold('tenant-b', 'read', second.req, second.res))).toBeUndefined();
    first.answer();
    const again = upload({ 'content-length': '10' });
    expect(refusal(() => limit.hold('tenant-a', 'read', again.req, again.res))).toBeUndefined();
  });

  it('a reader’s document larger than the readers’ half (a document limit above it) leaves the writers theirs', () => {
    // A document limit of the tenant's whole share: a reader's upload of unknown length holds all of it.
    const limit = limitDocumentBytesInFlight(2 * DOCUMENT_LIMIT, DOCUMENT_LIMIT);
    const unfinished = upload({ 'transfer-encoding': 'chunked' });
    expect(refusal(() => limit.hold('tenant-a', 'read', unfinished.req, unfinished.res))).toBeUndefined();
    const apply = upload({ 'content-length': String(DOCUMENT_LIMIT / 2) });
    expect(refusal(() => limit.hold('tenant-a', 'write', apply.req, apply.res))).toBeUndefined();
    const more = upload({ 'content-length': '10' });
    expect(refusal(() => limit.hold('tenant-a', 'write', more.req, more.res))).toBe(
      'tenant_document_bytes_in_flight',
    );
    expect(refusal(() => limit.hold('tenant-a', 'read', more.req, more.res))).toBe(
      'tenant_document_bytes_in_flight',
    );
  });
});
