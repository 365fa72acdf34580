import type { RequestHandler } from 'express';

/**
 * The methods whose body the admin API never reads: none of its GET, HEAD or DELETE endpoints gives a
 * body a meaning (RFC 9110 §9.3.1, §9.3.2, §9.3.5), so one sent is neither parsed nor refused, as on
 * Kong's admin API. An answer sent before such a body arrived whole closes its connection
 * (unread-body.ts), so an unread body costs the listener nothing.
 */
const METHODS_WITHOUT_BODY: ReadonlySet<string> = new Set(['GET', 'HEAD', 'DELETE']);

/**
 * `handler` (a body's check or parser) for the requests whose body is read; the others pass it by. Its
 * promise is handed on, so express answers what an async handler throws.
 */
export function onBodiesRead(handler: RequestHandler): RequestHandler {
  return (req, res, next) => {
    if (METHODS_WITHOUT_BODY.has(req.method)) return next();
    return handler(req, res, next);
  };
}
