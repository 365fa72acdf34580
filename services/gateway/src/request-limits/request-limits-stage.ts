import type { IncomingMessage } from 'node:http';
import { failExchange } from '../pipeline/errors.js';
import { ROUTE_ONLY, type RoutePolicy, type RouteStage } from '../pipeline/stage.js';

/**
 * A route's own `max_header_bytes` and `max_body_bytes`, below the gateway's global limits (the lower
 * one applies: the listener refuses anything over the global ones before a route is known). Checked
 * after the route's IP rules and CORS (so a refusal carries the CORS headers of an allowed Origin, and a
 * preflight, which never reaches the origin, is answered whatever its size), before anything else of
 * the route runs: 431 / 413. A body without a declared length is counted as it streams to the origin
 * and cut at the route's limit (413 when nothing was answered yet).
 */
export function createRequestLimitsPolicy(globalMaxBodyBytes: number): RoutePolicy {
  return {
    name: 'request_limits',
    readsOrigins: false,
    compiledFrom: ROUTE_ONLY,
    compileRoute({ route }) {
      const maxHeaderBytes = route.max_header_bytes ?? null;
      const maxBodyBytes =
        route.max_body_bytes === null ||
        route.max_body_bytes === undefined ||
        route.max_body_bytes >= globalMaxBodyBytes
          ? null
          : route.max_body_bytes;
      if (maxHeaderBytes === null && maxBodyBytes === null) return null;
      return requestLimitsStage(maxHeaderBytes, maxBodyBytes);
    },
  };
}

function requestLimitsStage(maxHeaderBytes: number | null, maxBodyBytes: number | null): RouteStage {
  return {
    name: 'request_limits',
    onRequest(exchange) {
      const { req } = exchange;
      if (maxHeaderBytes !== null && headerSectionBytes(req) > maxHeaderBytes) {
        failExchange(
          exchange,
          431,
          'request_header_fields_too_large',
          `the request headers exceed ${maxHeaderBytes} bytes on this route`,
        );
        return 'handled';
      }
      if (maxBodyBytes !== null) {
        const declared = req.headers['content-length'];
        if (declared !== undefined && Number(declared) > maxBodyBytes) {
          failExchange(
            exchange,
            413,
            'payload_too_large',
            `the request body exceeds ${maxBodyBytes} bytes on this route`,
          );
          return 'handled';
        }
        exchange.maxBodyBytes = maxBodyBytes;
      }
      return 'continue';
    },
  };
}

/**
 * The header section's size as sent: `name: value\r\n` per line, and over HTTP/1.x the request line
 * (`GET /path?query HTTP/1.1\r\n`), which the listener's own limit counts too. Over HTTP/2 the raw
 * headers already hold :method and :path.
 */
function headerSectionBytes(req: IncomingMessage): number {
  const raw = req.rawHeaders;
  let bytes = req.httpVersionMajor === 2 ? 0 : (req.method ?? '').length + (req.url ?? '').length + 12;
  for (let i = 0; i < raw.length; i += 2) bytes += raw[i]!.length + raw[i + 1]!.length + 4;
  return bytes;
}
