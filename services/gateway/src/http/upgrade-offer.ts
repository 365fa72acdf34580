import type { IncomingMessage } from 'node:http';
import { headerTokens } from '@vantageedge/shared/http/header-values';

/** HTTP/1.x requests whose offer to switch protocols was ignored (see asksForWebSocket). */
const ignoredOffers = new WeakSet<IncomingMessage>();

/**
 * Whether an HTTP/1.x request asking to switch protocols is taken over as a WebSocket upgrade (node's
 * `shouldUpgradeCallback`): its Upgrade names `websocket`. Any other offer (`h2c`, which `curl --http2`
 * and Java's HttpClient send to http:// URLs) is ignored, as RFC 9110 §7.8 lets a server do: the request
 * is served over HTTP/1.1 as the same request without it (Upgrade and what Connection names are
 * hop-by-hop, never forwarded), and as the same request over HTTP/2 is. An HTTP/1.0 request's offer is
 * ignored whatever it names, as RFC 9110 §7.8 requires: a proxy in front that speaks HTTP/1.0 knows no
 * upgrade and would go on reading the tunnel's bytes as requests of its own.
 */
export function asksForWebSocket(req: IncomingMessage): boolean {
  const http10 = req.httpVersionMajor === 1 && req.httpVersionMinor === 0;
  if (!http10 && headerTokens(req.headers.upgrade).includes('websocket')) return true;
  ignoredOffers.add(req);
  return false;
}

/**
 * Whether the request's offer to switch protocols was ignored. Its answer must be its connection's last
 * (answerLastOnConnection): node's parser stops where the offering request ends, as for an upgrade taken,
 * and drops the rest of the bytes read with it; a request pipelined behind it would never be answered,
 * or the tail of one cut there would be read as a request of its own.
 */
export function ignoredUpgradeOffer(req: IncomingMessage): boolean {
  return ignoredOffers.has(req);
}
