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

/** What is left to check: a value at a path and depth, or an object key already found unsafe. */
type Pending = { value: unknown; path: string; depth: number } | { badKeyIn: string };

/**
 * Every string and object key of a parsed JSON value that is not safe text, by dotted path, in
 * document order; a value nested more than MAX_BODY_DEPTH levels is one problem of the whole `path`.
 * Iterative (an explicit stack), so no nesting can overflow the call stack.
 */
export function unsafeTextIn(value: unknown, path: string, found: ErrorDetail[] = []): ErrorDetail[] {
  const at = (parent: string, key: string | number) => (parent === '' ? String(key) : `${parent}.${key}`);
  const stack: Pending[] = [{ value, path, depth: 0 }];
  while (found.length < MAX_DETAILS) {
    const pending = stack.pop();
    if (pending === undefined) break;
    if ('badKeyIn' in pending) {
      found.push({
        field: pending.badKeyIn || 'body',
        issue: 'has a key with U+0000 or unpaired surrogates',
      });
      continue;
    }
    const { value: current, path: currentPath, depth } = pending;
    if (typeof current === 'string') {
      if (!isSafeText(current))
        found.push({ field: currentPath || 'body', issue: 'must not contain U+0000 or unpaired surrogates' });
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= MAX_BODY_DEPTH) {
      found.push({
        field: path || 'body',
        issue: `must not nest arrays and objects more than ${MAX_BODY_DEPTH} levels deep`,
      });
      break;
    }
    const children: Pending[] = Array.isArray(current)
      ? current.map((child, index) => ({ value: child, path: at(currentPath, index), depth: depth + 1 }))
      : Object.entries(current).map(([key, child]) =>
          isSafeText(key)
            ? { value: child, path: at(currentPath, key), depth: depth + 1 }
            : { badKeyIn: currentPath },
        );
    // Last child first onto the stack, so the children come off it in document order.
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i] as Pending);
  }
  return found;
}

/** 400 for a body or query string holding text PostgreSQL cannot store, before anything reads it. */
export const requireSafeText: RequestHandler = (req, _res, next) => {
  const problems = [...unsafeTextIn(req.query, ''), ...unsafeTextIn(req.body, '')];
  next(problems.length > 0 ? validationFailed(problems) : undefined);
};
