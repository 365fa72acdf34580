import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { arrivedOverHttp2, claimsUnspokenVersion } from '@vantageedge/shared/http/request-version';
import { requestBodyFraming } from '../http/request-body.js';
import { isWebSocketKey } from './switching-protocols.js';

/** What the origin's upgrade request carries for the client's handshake, or why the client's is refused. */
export type ClientHandshake =
  | { readonly ok: true; readonly webSocketKey: string; readonly overHttp2: boolean }
  | { readonly ok: false; readonly code: string; readonly message: string };

/**
 * Reads the client's side of a WebSocket opening handshake (refusals are 400s). Over HTTP/1.1: a GET with
 * `Upgrade: websocket` and a Sec-WebSocket-Key the origin's Sec-WebSocket-Accept is checked against. Over
 * HTTP/2 (an extended CONNECT for `websocket`, RFC 8441) the client sends no key and expects no accept:
 * the gateway asks its origin with a key of its own, so an origin's 101 is checked all the same.
 */
export function readClientHandshake(req: IncomingMessage): ClientHandshake {
  if (arrivedOverHttp2(req)) {
    // The stream's DATA frames are the WebSocket's bytes: a content-length would reach the origin's
    // HTTP/1.1 upgrade request, which then reads that many of the first frames' bytes as a body.
    if (declaresBody(req.headers['content-length'])) return bodyDeclaredBy('Content-Length');
    return { ok: true, webSocketKey: randomBytes(16).toString('base64'), overHttp2: true };
  }
  if (claimsUnspokenVersion(req)) {
    return {
      ok: false,
      code: 'invalid_http_version',
      message: 'a WebSocket upgrade must be an HTTP/1.1 request',
    };
  }
  if (req.method !== 'GET' || req.headers.upgrade?.toLowerCase() !== 'websocket') {
    return {
      ok: false,
      code: 'invalid_upgrade',
      message: 'only WebSocket upgrades (GET with Upgrade: websocket) are proxied',
    };
  }
  const webSocketKey = req.headers['sec-websocket-key'];
  if (!isWebSocketKey(webSocketKey)) {
    return {
      ok: false,
      code: 'invalid_upgrade',
      message: 'a WebSocket upgrade needs one Sec-WebSocket-Key: 16 random bytes, base64-encoded',
    };
  }
  // node reads such a body before the upgrade, while its Content-Length would go to the origin, which
  // then takes the WebSocket's first bytes for the body (or waits for them until its timeout).
  if (requestBodyFraming(req) !== 'none')
    return bodyDeclaredBy(
      req.headers['transfer-encoding'] === undefined ? 'Content-Length' : 'Transfer-Encoding',
    );
  return { ok: true, webSocketKey, overHttp2: false };
}

function bodyDeclaredBy(field: 'Content-Length' | 'Transfer-Encoding'): ClientHandshake {
  return { ok: false, code: 'invalid_upgrade', message: `a WebSocket upgrade has no body (${field} given)` };
}

/** An HTTP/2 request's content-length other than 0, as a declared body over HTTP/1.1 (requestBodyFraming). */
function declaresBody(contentLength: string | string[] | undefined): boolean {
  return contentLength !== undefined && contentLength !== '0';
}
