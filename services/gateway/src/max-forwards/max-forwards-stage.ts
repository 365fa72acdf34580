import type { IncomingMessage } from 'node:http';
import { failExchange } from '../pipeline/errors.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { ROUTE_ONLY, type RoutePolicy, type RouteStage } from '../pipeline/stage.js';

/**
 * Max-Forwards on TRACE and OPTIONS (RFC 9110 §7.6.2): the gateway forwards the request with the count
 * one less, and answers it itself, as the final recipient, when the count it receives is 0. Other
 * methods carry the header to the origin untouched (the RFC lets recipients ignore it there).
 *
 * After authentication and a route's own answer (the route's protection applies to the gateway's
 * answer too), before request transforms: what the gateway echoes for TRACE is what the client sent,
 * never a header the route or the gateway adds for the origin.
 */
export function createMaxForwardsPolicy(): RoutePolicy {
  return {
    name: 'max_forwards',
    readsOrigins: false,
    compiledFrom: ROUTE_ONLY,
    compileRoute({ route }) {
      const methods = route.methods.map((method) => method.toUpperCase());
      const takesAnyMethod = methods.length === 0;
      if (!takesAnyMethod && !methods.includes('TRACE') && !methods.includes('OPTIONS')) return null;
      return maxForwardsStage(takesAnyMethod ? undefined : methods.join(', '));
    },
  };
}

/** The most hops the gateway passes on: a larger count is forwarded as this, less one. */
const MAX_FORWARDS_SUPPORTED = 255;
const HOP_COUNT = /^\d+$/;

function maxForwardsStage(allow: string | undefined): RouteStage {
  return {
    name: 'max_forwards',
    onRequest(exchange) {
      const { req } = exchange;
      if (req.method !== 'TRACE' && req.method !== 'OPTIONS') return 'continue';
      const received = req.headers['max-forwards'];
      if (received === undefined) return 'continue';
      if (typeof received !== 'string' || !HOP_COUNT.test(received)) {
        failExchange(
          exchange,
          400,
          'invalid_max_forwards',
          'the Max-Forwards header must be a whole number of hops (0 or more)',
        );
        return 'handled';
      }
      const hops = Math.min(Number(received), MAX_FORWARDS_SUPPORTED);
      if (hops > 0) {
        req.headers['max-forwards'] = String(hops - 1);
        return 'continue';
      }
      if (req.method === 'TRACE') answerTrace(exchange);
      else answerOptions(exchange, allow);
      return 'handled';
    },
  };
}

/**
 * Request fields likely to carry a credential: not echoed (RFC 9110 §9.3.8), so that a page that
 * makes a browser send a TRACE cannot read its cookies or credentials from the answer.
 */
const NOT_ECHOED = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key']);

/** The request as the gateway received it (message/http), without the fields in NOT_ECHOED. */
function answerTrace(exchange: GatewayExchange): void {
  const body = Buffer.from(echoedRequest(exchange.req), 'latin1');
  exchange.res.writeHead(200, {
    'content-type': 'message/http',
    'content-length': body.length,
    'cache-control': 'no-store',
  });
  exchange.res.end(body);
}

function echoedRequest(req: IncomingMessage): string {
  let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  // HTTP/2's :authority is the Host of the request (RFC 9113 §8.3.1): echoed as one, in place of a Host
  // field sent beside it (the gateway refused one naming another host).
  const authority = req.headers[':authority'];
  if (typeof authority === 'string') text += `host: ${authority}\r\n`;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // HTTP/2 pseudo-headers are the request line's and the Host written above.
    if (name.startsWith(':') || NOT_ECHOED.has(name.toLowerCase())) continue;
    if (authority !== undefined && name === 'host') continue;
    text += `${name}: ${raw[i + 1]}\r\n`;
  }
  return `${text}\r\n`;
}

/** The route's methods, when it names them, as what the gateway offers for this resource. */
function answerOptions(exchange: GatewayExchange, allow: string | undefined): void {
  exchange.res.writeHead(200, allow === undefined ? { 'content-length': 0 } : { allow, 'content-length': 0 });
  exchange.res.end();
}
