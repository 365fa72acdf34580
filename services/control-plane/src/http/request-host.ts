import type { IncomingMessage } from 'node:http';
import { hostHeaderName } from '@vantageedge/shared/routing/host-lookup';
import type { RequestHandler } from 'express';
import { ApiError } from './errors.js';

/**
 * Why a request's Host is refused (RFC 9112 §3.2), or null. HTTP/1.0 may omit it; an empty one is what
 * a client sends for a target without authority. Two Host lines are refused rather than read one way:
 * a proxy in front may have read the other.
 */
function hostIssue(req: IncomingMessage): string | null {
  let hostLines = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]?.toLowerCase() === 'host') hostLines++;
  }
  if (hostLines > 1) return 'named more than once';
  const host = req.headers.host;
  if (host === undefined)
    return req.httpVersion === '1.0' ? null : 'missing: an HTTP/1.1 request names its host';
  if (host !== '' && hostHeaderName(host) === undefined) return 'not host[:port]';
  return null;
}

/** 400 validation_failed (field `host`) for a request that does not name its host once, well-formed. */
export const requireWellFormedHost: RequestHandler = (req, _res, next) => {
  const issue = hostIssue(req);
  if (issue === null) {
    next();
    return;
  }
  next(
    new ApiError(400, 'validation_failed', 'the request must name its host once, in Host', [
      { field: 'host', issue },
    ]),
  );
};
