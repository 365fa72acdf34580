import type { RequestHandler } from 'express';

/**
 * Headers on every control-plane answer. Its JSON carries what tenant admins wrote (names, paths, error
 * details) and /docs is a page of scripts: no other site may frame either (clickjacking a platform
 * admin), and no browser may read an answer as another type than it says. A JSON answer opened as a
 * page runs nothing. /docs (inline scripts: Scalar's bundle) replaces the policy with
 * DOCS_CONTENT_SECURITY_POLICY, and the console with its own (console-router.ts).
 */
export const API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'";
export const DOCS_CONTENT_SECURITY_POLICY = "frame-ancestors 'none'";

export const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Content-Security-Policy', API_CONTENT_SECURITY_POLICY);
  next();
};
