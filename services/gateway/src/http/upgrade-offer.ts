import type { IncomingMessage } from 'node:http';
import { headerTokens } from '@vantageedge/shared/http/header-values';

/**
 * Whether an HTTP/1.x request asking to switch protocols is taken over as a WebSocket upgrade (node's
 * `shouldUpgradeCallback`): its Upgrade names `websocket`. Any other offer (`h2c`, which `curl --http2`
 * and Java's HttpClient send to http:// URLs) is ignored, as RFC 9110 §7.8 lets a server do: the request
 * is served over HTTP/1.1 as the same request without it (Upgrade and what Connection names are
 * hop-by-hop, never forwarded), and as the same request over HTTP/2 is.
 */
export function asksForWebSocket(req: IncomingMessage): boolean {
  return headerTokens(req.headers.upgrade).includes('websocket');
}
