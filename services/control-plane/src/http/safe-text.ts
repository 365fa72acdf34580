import type { RequestHandler } from 'express';
import type { ErrorDetail } from './errors.js';
import { validationFailed } from './errors.js';

/**
 * Text the event store and the read models can hold: PostgreSQL refuses U+0000 in text and jsonb, and
 * an unpaired UTF-16 surrogate (`"\ud800"` in JSON) is no Unicode character at all. The same rule is in
 * /openapi.json as the pattern of every string (SAFE_TEXT_PATTERN).
 */
export const SAFE_TEXT_PATTERN = '^[^\\u0000\\uD800-\\uDFFF]*$';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function isSafeText(value: string): boolean {
  return !value.includes('\u0000') && !LONE_SURROGATE.test(value);
}

const MAX_DETAILS = 10;

/** Every string and object key of a parsed JSON value that is not safe text, by dotted path. */
export function unsafeTextIn(value: unknown, path: string, found: ErrorDetail[] = []): ErrorDetail[] {
  if (found.length >= MAX_DETAILS) return found;
  const at = (key: string | number) => (path === '' ? String(key) : `${path}.${key}`);
  if (typeof value === 'string') {
    if (!isSafeText(value))
      found.push({ field: path || 'body', issue: 'must not contain U+0000 or unpaired surrogates' });
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => {
      unsafeTextIn(item, at(index), found);
    });
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (!isSafeText(key))
        found.push({ field: path || 'body', issue: 'has a key with U+0000 or unpaired surrogates' });
      else unsafeTextIn(item, at(key), found);
    }
  }
  return found;
}

/** 400 for a body or query string holding text PostgreSQL cannot store, before anything reads it. */
export const requireSafeText: RequestHandler = (req, _res, next) => {
  const problems = [...unsafeTextIn(req.query, ''), ...unsafeTextIn(req.body, '')];
  next(problems.length > 0 ? validationFailed(problems) : undefined);
};
