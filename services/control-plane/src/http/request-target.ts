import type { IncomingMessage, RequestListener } from 'node:http';
import type { RequestHandler } from 'express';
import { ApiError } from './errors.js';

/** Requests whose target is neither origin-form nor an absolute http(s) URL the app can read. */
const unreadableTargets = new WeakSet<IncomingMessage>();

/**
 * A request target as the app routes it, origin-form (`/api/v1/…`). A client talking
 * through a forward proxy sends absolute-form (`http://cp.example/api/v1/…`), which a server must
 * accept, its authority standing for Host (RFC 9112 §3.2.2); express and Clerk's middleware read only
 * origin-form (an absolute target was answered express's HTML 404, or Clerk's 400 without a body). A
 * target that is neither, or that holds user information (RFC 9110 §4.2.4), is marked for
 * refuseUnreadableTarget and routed as `/`.
 */
function readTargetAsOriginForm(req: IncomingMessage): void {
  const target = req.url ?? '';
  if (target.startsWith('/')) return;
  const absolute = /^https?:\/\//i.test(target) ? parsedUrl(target) : undefined;
  if (
    absolute === undefined ||
    absolute.host === '' ||
    absolute.username !== '' ||
    absolute.password !== ''
  ) {
    unreadableTargets.add(req);
    req.url = '/';
    return;
  }
  req.url = `${absolute.pathname}${absolute.search}`;
  req.headers.host = absolute.host;
}

/** `handler` (the app) given each request with its target read as origin-form first. */
export function withOriginFormTargets(handler: RequestListener): RequestListener {
  return (req, res) => {
    readTargetAsOriginForm(req);
    handler(req, res);
  };
}

function parsedUrl(target: string): URL | undefined {
  try {
    return new URL(target);
  } catch {
    return undefined;
  }
}

/** 400 validation_failed (field `request-target`) for a request whose target was not read (see above). */
export const refuseUnreadableTarget: RequestHandler = (req, _res, next) => {
  if (!unreadableTargets.has(req)) {
    next();
    return;
  }
  next(
    new ApiError(400, 'validation_failed', 'the request target must be a path or an absolute http(s) URL', [
      {
        field: 'request-target',
        issue: 'not a path (/api/v1/…) nor an http(s) URL without user information',
      },
    ]),
  );
};
