import type { IncomingMessage } from 'node:http';
import { repeatedMemberName } from '@vantageedge/shared/json/repeated-member-names';
import express, { type RequestHandler } from 'express';
import { ApiError, validationFailed } from './errors.js';

/** The media types read as JSON bodies. */
export const JSON_TYPES = ['application/json', 'application/*+json'];

/** The bytes of each body read, until its member names are checked. */
const bodyBytes = new WeakMap<IncomingMessage, Buffer>();

/**
 * Only UTF-8 is read (RFC 8259 §8.1), so the member names checked are the ones JSON.parse reads: a
 * body in UTF-16 or UTF-32 would have to be decoded a second time, the same way, to be checked.
 */
function keepUtf8Bytes(req: IncomingMessage, _res: unknown, bytes: Buffer, encoding: string): void {
  if (encoding !== 'utf-8') {
    throw new ApiError(415, 'unsupported_media_type', 'send the body as UTF-8', [
      { field: 'content-type', issue: `charset ${encoding} is not utf-8: JSON bodies are UTF-8` },
    ]);
  }
  bodyBytes.set(req, bytes);
}

/**
 * A JSON body parser that refuses an object naming a member twice (`{"name":"a","name":"b"}`, or
 * `"a"` and `"\u0061"`) with a 400 naming its path. JSON.parse keeps the last value silently, while a
 * reviewer, a policy tool or a log may show the first: I-JSON (RFC 7493 §2.3) forbids repeated names.
 * A body that is not JSON is answered as such, whatever it repeats.
 */
export function jsonBody(limitBytes: number): RequestHandler {
  const parse = express.json({ limit: limitBytes, type: JSON_TYPES, strict: true, verify: keepUtf8Bytes });
  return (req, res, next) => {
    parse(req, res, (error?: unknown) => {
      const bytes = bodyBytes.get(req);
      bodyBytes.delete(req);
      if (error !== undefined || bytes === undefined) {
        next(error);
        return;
      }
      const path = repeatedMemberName(bytes.toString('utf8'));
      next(
        path === undefined
          ? undefined
          : validationFailed([
              {
                field: path.join('.'),
                issue: 'is named more than once in its object: JSON member names must be unique',
              },
            ]),
      );
    });
  };
}
