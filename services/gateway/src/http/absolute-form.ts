import type { IncomingMessage } from 'node:http';
import { namesSameAuthority } from './request-authority.js';

/** `http://` or `https://` at the start of a request target, in any letter case (RFC 3986 §3.1). */
const HTTP_SCHEME = /^(https?):\/\//i;

/**
 * Reads an absolute-form request target (RFC 9112 §3.2.2: `GET http://acme.example.com/x HTTP/1.1`, which
 * a server must accept and clients send to what they take for a proxy) as the request it names: req.url
 * becomes its path and query (`/` when it has none), and an HTTP/1.0 request without Host gets its
 * authority as Host. Returns false when the request's Host names another authority: a proxy in front may
 * have routed by either, so it is refused as two Host lines are, never served by one reading.
 *
 * Any other target is left as it is: an origin-form one (a request pays one character comparison), and
 * one with user information (RFC 9110 §4.2.4: a recipient treats it as an error; it hides the authority
 * from a reader), another scheme or `*`, which the path check refuses.
 */
export function readAbsoluteForm(req: IncomingMessage): boolean {
  const url = req.url;
  if (url === undefined || url.charCodeAt(0) === 47 /* / */) return true;
  const scheme = HTTP_SCHEME.exec(url);
  if (scheme === null) return true;
  const rest = url.slice(scheme[0].length);
  let end = 0;
  while (end < rest.length && rest[end] !== '/' && rest[end] !== '?') end++;
  const authority = rest.slice(0, end);
  if (authority === '' || authority.includes('@')) return true;
  const host = req.headers.host;
  if (host !== undefined) {
    if (!namesSameAuthority(authority, host, scheme[1]!)) return false;
  } else if (req.httpVersion === '1.0') {
    // HTTP/1.1 must send Host whatever its target (RFC 9112 §3.2): one without stays refused 400.
    req.headers.host = authority;
  }
  const pathAndQuery = rest.slice(end);
  req.url = pathAndQuery.charCodeAt(0) === 47 ? pathAndQuery : `/${pathAndQuery}`;
  return true;
}
