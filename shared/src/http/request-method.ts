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

/**
 * Why the gateways refuse a request's method (400 invalid_method), or undefined when they take it:
 * the gateway's check, and explain's description of it.
 */
export function methodRefusal(method: string): string | undefined {
  if (hasLowerCaseLetters(method)) return `the request method must be upper-case (method ${method})`;
  if (isUnknownMethod(method)) return `the request method is not one the gateway accepts (method ${method})`;
  return undefined;
}
