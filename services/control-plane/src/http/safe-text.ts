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

/**
 * How deeply arrays and objects may nest in a body. The deepest legitimate body, a tenant document
 * for config plan/apply, is about ten levels deep; a deeper one is refused before anything walks it.
 */
export const MAX_BODY_DEPTH = 64;

/**
 * Every string and object key of a parsed JSON value that is not safe text, by dotted path, in
 * document order; a value nested more than MAX_BODY_DEPTH levels is one problem of the whole `path`.
 * Recursive only MAX_BODY_DEPTH levels deep, so no nesting can overflow the call stack. A body at the
 * document limit holds millions of values: the walk allocates nothing for a value that is safe (its
 * path is spelled only for a problem), so it costs a fraction of the JSON parse before it.
 */
export function unsafeTextIn(value: unknown, path: string, found: ErrorDetail[] = []): ErrorDetail[] {
  const keys: Array<string | number> = [];
  const pathHere = () =>
    keys.reduce<string>((parent, key) => (parent === '' ? String(key) : `${parent}.${key}`), path);
  /** false once the walk is over: enough problems, or nesting too deep. */
  const visit = (current: unknown, depth: number): boolean => {
    if (typeof current === 'string') {
      if (!isSafeText(current))
        found.push({ field: pathHere() || 'body', issue: 'must not contain U+0000 or unpaired surrogates' });
      return found.length < MAX_DETAILS;
    }
    if (typeof current !== 'object' || current === null) return true;
    if (depth >= MAX_BODY_DEPTH) {
      found.push({
        field: path || 'body',
        issue: `must not nest arrays and objects more than ${MAX_BODY_DEPTH} levels deep`,
      });
      return false;
    }
    if (Array.isArray(current)) {
      for (let index = 0; index < current.length; index++) {
        keys.push(index);
        const goOn = visit(current[index], depth + 1);
        keys.pop();
        if (!goOn) return false;
      }
      return true;
    }
    for (const key of Object.keys(current)) {
      if (!isSafeText(key)) {
        found.push({ field: pathHere() || 'body', issue: 'has a key with U+0000 or unpaired surrogates' });
        if (found.length >= MAX_DETAILS) return false;
        continue;
      }
      keys.push(key);
      const goOn = visit((current as Record<string, unknown>)[key], depth + 1);
      keys.pop();
      if (!goOn) return false;
    }
    return true;
  };
  if (found.length < MAX_DETAILS) visit(value, 0);
  return found;
}

/** 400 for a body or query string holding text PostgreSQL cannot store, before anything reads it. */
export const requireSafeText: RequestHandler = (req, _res, next) => {
  const problems = [...unsafeTextIn(req.query, ''), ...unsafeTextIn(req.body, '')];
  next(problems.length > 0 ? validationFailed(problems) : undefined);
};
