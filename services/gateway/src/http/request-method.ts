import { METHODS } from 'node:http';

/**
 * A method with lower-case letters (`delete`, `Get`): only HTTP/2 lets one through (node's HTTP/1.1
 * parser knows upper-case methods only). Methods are case-sensitive and route method lists upper-case,
 * so no route that names `DELETE` matches `delete`; but ASP.NET and Werkzeug read it as DELETE, so a
 * route for every method would hand a keyed route's action to the origin. Such a request is refused.
 */
export function hasLowerCaseLetters(method: string): boolean {
  for (let i = 0; i < method.length; i++) {
    const code = method.charCodeAt(i);
    if (code >= 97 && code <= 122) return true;
  }
  return false;
}

/** The methods node's HTTP/1.1 parser takes (it refuses any other request line as malformed). */
const HTTP1_METHODS: ReadonlySet<string> = new Set(METHODS);

/**
 * A method the HTTP/1.1 listeners never let through (`FOO`, `GETT`): HTTP/2 carries any token in
 * `:method`. Refused over HTTP/2 as well, so that what reaches an origin does not depend on the
 * protocol the client chose.
 */
export function isUnknownMethod(method: string): boolean {
  return !HTTP1_METHODS.has(method);
}

/** The most of a method the access log and spans carry: every method the gateway accepts is shorter. */
export const RECORDED_METHOD_MAX = 32;

/**
 * The method as the access log and spans record it: cut after RECORDED_METHOD_MAX characters and then
 * ending in `…`. Over HTTP/2 `:method` may be any token up to the header limit (16 KiB), and such a
 * request is refused only after its SERVER span started and before its line is written. A cut one is
 * copied out: a span waits in the export queue, and a cut of the method would keep all of it alive.
 */
export function recordedMethod(method: string): string {
  if (method.length <= RECORDED_METHOD_MAX) return method;
  return Buffer.from(`${method.slice(0, RECORDED_METHOD_MAX)}…`, 'utf8').toString('utf8');
}
