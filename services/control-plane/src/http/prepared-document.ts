import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';

/**
 * GET of a JSON document that is the same for everyone (/openapi.json, the tenant document's JSON
 * Schema). They are answered without a credential or a rate limit, and /openapi.json is over half a
 * megabyte: serialized again per request, each anonymous GET cost milliseconds of the event loop. The
 * bytes are prepared once, with a strong ETag, so a client that has them (the /docs page reloaded) gets
 * 304 without them.
 */
export function preparedDocument(document: unknown, mediaType: string): RequestHandler {
  return preparedText(JSON.stringify(document), mediaType);
}

/**
 * GET of a text that is the same for everyone, as its bytes prepared once: `res.send` of a string
 * encodes it again per request, and each answer waiting for a client that does not read keeps its own
 * copy (the /docs page, 4.9 MB with the API reference inlined: one connection's pipelined GETs held
 * gigabytes before the requests were taken in turn).
 */
export function preparedText(text: string, mediaType: string): RequestHandler {
  const bytes = Buffer.from(text);
  const etag = `"${createHash('sha256').update(bytes).digest('base64url')}"`;
  const contentType = `${mediaType}; charset=utf-8`;
  return (_req, res) => {
    res.setHeader('Content-Type', contentType);
    res.setHeader('ETag', etag);
    res.send(bytes);
  };
}
