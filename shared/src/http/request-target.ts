import { isCredentialQueryParam, REDACTED_VALUE } from '../domain/credential-headers.js';

/** `scheme://` at the start of an absolute-form request target (RFC 9112 §3.2.2). */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
/** A CONNECT's authority-form target (RFC 9112 §3.2.3), `host:port`, maybe after user information. */
const AUTHORITY_FORM = /^[^/*]+$/;

/**
 * The request target as the access log and spans show it: without its query (`?access_token=` of a
 * WebSocket client, a key a client put in the URL), its credential `;` parameters redacted
 * (pathWithoutCredentialParameters) and without the URL's user information, in absolute
 * form (`http://user:password@host/…`, as a client sends to a forward proxy) and in a CONNECT's authority
 * form (`user:password@host:443`, which node's parser accepts). Any other target (`*`, and what node
 * accepts after it) is shown whole: cut at its `@`, `*` followed by `/@/admin` would be logged as `/admin`.
 * With `max`, only its first `max` characters, redacted after the cut: a client's target as long as the
 * header limit (up to 1 MiB) full of `;` parameters costs no more than the part a log or span keeps.
 */
export function targetWithoutCredentials(url: string, max = Number.POSITIVE_INFINITY): string {
  const queryAt = url.indexOf('?');
  const target = withoutUserInformation(queryAt < 0 ? url : url.slice(0, queryAt));
  return pathWithoutCredentialParameters(target.length > max ? target.slice(0, max) : target);
}

function withoutUserInformation(target: string): string {
  if (target.startsWith('/')) return target;
  const scheme = ABSOLUTE_FORM.exec(target)?.[0];
  if (scheme === undefined) {
    return AUTHORITY_FORM.test(target) ? target.slice(target.lastIndexOf('@') + 1) : target;
  }
  const pathAt = target.indexOf('/', scheme.length);
  const userInfoEnd = target.lastIndexOf('@', pathAt < 0 ? target.length : pathAt);
  return userInfoEnd < scheme.length ? target : scheme + target.slice(userInfoEnd + 1);
}

/** A `;` parameter of a path segment with a value: `;name=value`, up to the next `;` or `/`. */
const PATH_PARAMETER = /;([^;/=]*)=([^;/]+)/g;

/**
 * `path` with the value of each `;` parameter that a credential's name (isCredentialQueryParam) replaced
 * by REDACTED_VALUE: Tomcat, Jetty and Spring take a session id from `/cart;jsessionid=…` when the client
 * keeps no cookie, and that id is the session's credential. Other parameters stay, as does a path
 * without `;` (the same string).
 */
export function pathWithoutCredentialParameters(path: string): string {
  if (!path.includes(';')) return path;
  return path.replace(PATH_PARAMETER, (parameter: string, name: string) =>
    isCredentialQueryParam(decodedName(name)) ? `;${name}=${REDACTED_VALUE}` : parameter,
  );
}

function decodedName(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}
