import type { IncomingHttpHeaders } from 'node:http';
import type { RouteConfig } from '@vantageedge/shared/domain/gateway-config';
import { formPairs } from '@vantageedge/shared/http/form-decoding';
import { compileQueryParameterRemoval } from '../transforms/query-transform.js';

/** The query parameter a browser may carry its token in (`websocket_token: query`). */
export const TOKEN_QUERY_PARAMETER = 'access_token';
/** The Sec-WebSocket-Protocol entry prefix a browser may carry its token in (`websocket_token: subprotocol`). */
export const TOKEN_SUBPROTOCOL_PREFIX = 'vantageedge.token.';

/**
 * The query without the token parameter, in every spelling an origin reads as it (`ACCESS_TOKEN`,
 * `access.token`, `access_token[]`, a `;`-separated pair), and every other parameter byte for byte.
 */
const withoutTokenParameter = compileQueryParameterRemoval([TOKEN_QUERY_PARAMETER]);

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface UpgradeCredentials {
  /** The headers to authenticate (a token found elsewhere moved into Authorization or X-API-Key). */
  headers: IncomingHttpHeaders;
  /** The query to forward (the token parameter removed in every spelling), with its leading "?" or ''. */
  query: string;
  /** The subprotocols to offer the origin (every token entry removed); undefined when none are left. */
  protocols: string | undefined;
}

/**
 * Browsers cannot set headers on a WebSocket: a route may opt in to take the token from the query or
 * from Sec-WebSocket-Protocol. A token found there authenticates as if it had come in a header (a JWT
 * as a bearer token, anything else as an API key) and never reaches the origin, nor does any other
 * token entry the client offered. Headers win: a request that has Authorization or X-API-Key is
 * authenticated by them alone.
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
    token = formPairs(query.slice(1)).find(([name]) => name === TOKEN_QUERY_PARAMETER)?.[1];
    forwardQuery = withoutTokenParameter(query);
  }
  if (route.websocket_token === 'subprotocol' && protocols !== undefined) {
    const offered = protocols.split(',').map((entry) => entry.trim());
    const entry = offered.find((candidate) => candidate.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
    if (entry !== undefined) {
      token = entry.slice(TOKEN_SUBPROTOCOL_PREFIX.length);
      const rest = offered.filter((candidate) => !candidate.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
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
