import type { IncomingHttpHeaders } from 'node:http';
import type { RouteConfig } from '@vantageedge/shared/domain/gateway-config';

/** The query parameter a browser may carry its token in (`websocket_token: query`). */
export const TOKEN_QUERY_PARAMETER = 'access_token';
/** The Sec-WebSocket-Protocol entry prefix a browser may carry its token in (`websocket_token: subprotocol`). */
export const TOKEN_SUBPROTOCOL_PREFIX = 'vantageedge.token.';

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface UpgradeCredentials {
  /** The headers to authenticate (a token found elsewhere moved into Authorization or X-API-Key). */
  headers: IncomingHttpHeaders;
  /** The query to forward (the token parameter removed), with its leading "?" or ''. */
  query: string;
  /** The subprotocols to offer the origin (the token entry removed); undefined when none are left. */
  protocols: string | undefined;
}

/**
 * Browsers cannot set headers on a WebSocket: a route may opt in to take the token from the query or
 * from Sec-WebSocket-Protocol. A token found there authenticates as if it had come in a header (a JWT
 * as a bearer token, anything else as an API key) and never reaches the origin. Headers win: a
 * request that has Authorization or X-API-Key is authenticated by them alone.
 */
export function upgradeCredentials(
  route: RouteConfig,
  headers: IncomingHttpHeaders,
  query: string,
): UpgradeCredentials {
  const protocols = headers['sec-websocket-protocol'];
  if (route.websocket_token === 'header') return { headers, query, protocols };
  let token: string | undefined;
  let forwardQuery = query;
  let forwardProtocols = protocols;
  if (route.websocket_token === 'query' && query !== '') {
    const params = new URLSearchParams(query.slice(1));
    const value = params.get(TOKEN_QUERY_PARAMETER);
    if (value !== null) {
      token = value;
      params.delete(TOKEN_QUERY_PARAMETER);
      const rest = params.toString();
      forwardQuery = rest === '' ? '' : `?${rest}`;
    }
  }
  if (route.websocket_token === 'subprotocol' && protocols !== undefined) {
    const offered = protocols.split(',').map((entry) => entry.trim());
    const entry = offered.find((candidate) => candidate.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
    if (entry !== undefined) {
      token = entry.slice(TOKEN_SUBPROTOCOL_PREFIX.length);
      const rest = offered.filter((candidate) => candidate !== entry);
      forwardProtocols = rest.length === 0 ? undefined : rest.join(', ');
    }
  }
  const hasHeaderCredential = headers.authorization !== undefined || headers['x-api-key'] !== undefined;
  if (token === undefined || token === '' || hasHeaderCredential) {
    return { headers, query: forwardQuery, protocols: forwardProtocols };
  }
  const withToken: IncomingHttpHeaders = { ...headers };
  if (JWT_SHAPE.test(token)) withToken.authorization = `Bearer ${token}`;
  else withToken['x-api-key'] = token;
  return { headers: withToken, query: forwardQuery, protocols: forwardProtocols };
}
