import { pathWithoutCredentialParameters } from '../http/request-target.js';

/**
 * The most of a request path one log line carries. A process's log lines share one bounded buffer
 * (stdout: the gateway's access log, every service's winston log), so a client sending request targets
 * of the header limit's size would otherwise fill it, and other tenants' lines would be dropped.
 */
export const LOGGED_PATH_MAX = 2048;

/**
 * The path, its credential `;` parameters redacted (pathWithoutCredentialParameters), cut after
 * LOGGED_PATH_MAX characters and then ending in `…`.
 */
export function loggedPath(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  if (path.length <= LOGGED_PATH_MAX) return pathWithoutCredentialParameters(path);
  return `${pathWithoutCredentialParameters(path.slice(0, LOGGED_PATH_MAX))}…`;
}
