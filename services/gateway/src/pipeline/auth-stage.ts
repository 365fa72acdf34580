import type { Authenticator } from '../auth/authenticator.js';
import type { AuthResult } from '../auth/identity.js';
import { failExchange } from './errors.js';
import type { GatewayExchange } from './exchange.js';
import { ROUTE_ONLY, type RoutePolicy, type RouteStage, type StageResult } from './stage.js';

/**
 * Authentication as the first stage of every route that is not public (a public route gets no stage:
 * its callers are anonymous). API keys and cached tokens answer synchronously; only a token seen for
 * the first time is verified asynchronously.
 */
export function createAuthPolicy(authenticator: Authenticator): RoutePolicy {
  const stage: RouteStage = {
    name: 'auth',
    onRequest(exchange) {
      const result = authenticator.authenticate(
        exchange.tenant!,
        exchange.route!,
        exchange.req.headers,
        exchange.clientIp,
      );
      return result instanceof Promise
        ? result.then((settled) => applyAuth(exchange, settled))
        : applyAuth(exchange, result);
    },
  };
  return {
    name: 'auth',
    readsOrigins: false,
    compiledFrom: ROUTE_ONLY,
    compileRoute: ({ route }) => (route.auth_mode === 'public' ? null : stage),
  };
}

function applyAuth(exchange: GatewayExchange, result: AuthResult): StageResult {
  if (result.ok) {
    exchange.identity = result.identity;
    return 'continue';
  }
  const headers: Record<string, string> = { 'www-authenticate': result.challenge };
  if (result.retryAfterSeconds !== undefined) headers['retry-after'] = String(result.retryAfterSeconds);
  failExchange(exchange, result.status, result.code, result.message, headers);
  return 'handled';
}
