/**
 * URLs a tenant configures for the gateways to reach: what in them a gateway would store and never use.
 * Each function returns the problem, or null; text that is not a URL at all is left to the schema's own
 * check.
 */

const CREDENTIALS =
  'must not carry credentials (user:password@): the gateway never sends them and would log them';

function carriesCredentials(url: URL): boolean {
  return url.username !== '' || url.password !== '';
}

/**
 * An origin target: a gateway connects to its scheme, host and port, and puts its path in front of
 * every forwarded path and of the health-check path.
 */
export function originTargetUrlProblem(text: string): string | null {
  const url = URL.parse(text);
  if (url === null) return null;
  if (carriesCredentials(url)) {
    return `${CREDENTIALS}; set an authorization header in the route’s request_headers instead`;
  }
  if (url.search !== '') {
    return 'must not have a query: each request is forwarded with its own query, never this one';
  }
  if (url.hash !== '') return 'must not have a fragment: it is never sent to the origin';
  if (url.port === '0') return 'must have a port from 1 to 65535: nothing is reached on port 0';
  return null;
}

/** An OIDC key set: a gateway fetches it as written, and a fetch refuses a URL with credentials. */
export function keySetUrlProblem(text: string): string | null {
  const url = URL.parse(text);
  if (url === null) return null;
  if (carriesCredentials(url)) return `${CREDENTIALS}: no key set could be fetched`;
  if (url.port === '0') return 'must have a port from 1 to 65535: nothing is reached on port 0';
  return null;
}
