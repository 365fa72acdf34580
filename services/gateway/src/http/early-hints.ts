import type { HeaderTransform } from '@vantageedge/shared/domain/route-policies';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { linksOfLine, nodeSendsLink } from './sendable-link.js';

/**
 * Bytes of Link an origin's 103 may carry to be relayed: a browser preloads a page's few critical
 * resources from it, and each hint is held for the client until it reads it.
 */
const MAX_HINT_BYTES = 8 * 1024;

/** Responses whose client got a 103 already (a request's first one is relayed; browsers read no other). */
const hinted = new WeakSet<object>();

/**
 * Relays an origin's 103 (Early Hints, RFC 8297) to the client of `req` before the final answer (RFC
 * 9110 §15.2: a proxy forwards the 1xx answers it did not ask for): its Link lines only, what a browser
 * reads of it (no cookie, no field named in its Connection), and only the request's first (an origin
 * sending one per retried attempt, or a flood of them, gives the client one). Never to an HTTP/1.0
 * client, which cannot read a 1xx answer, nor once the response head is out, nor on a route whose
 * `response_headers` set or remove Link (the origin's would reach the client by the 103). Each link of
 * a line that lists several is read on its own, and one node would not send (not `<uri>; params`) is
 * dropped, checked before node sees it (sendable-link.ts). Runs only when an origin sends a 103.
 */
export function relayEarlyHints(
  exchange: GatewayExchange,
  headers: Record<string, string | string[] | undefined>,
): void {
  const { req, res } = exchange;
  if (req.httpVersion === '1.0' || res.headersSent || res.writableEnded || hinted.has(res)) return;
  if (rewritesLink(exchange.route?.config.response_headers ?? null)) return;
  const link = headers['link'];
  if (link === undefined) return;
  const lines = typeof link === 'string' ? [link] : link;
  let bytes = 0;
  for (const line of lines) bytes += line.length;
  if (bytes > MAX_HINT_BYTES) return;
  hinted.add(res);
  const sendable: string[] = [];
  for (const line of lines) {
    for (const one of linksOfLine(line)) if (nodeSendsLink(one)) sendable.push(one);
  }
  if (sendable.length === 0) return;
  try {
    res.writeEarlyHints({ link: sendable });
  } catch {
    // The client's stream is gone (HTTP/2): it goes without the hint.
  }
}

/** The route's response transform replaces or removes the origin's Link. */
function rewritesLink(transform: HeaderTransform | null): boolean {
  if (transform === null) return false;
  for (const name of transform.remove) if (name.toLowerCase() === 'link') return true;
  for (const name in transform.set) if (name.toLowerCase() === 'link') return true;
  return false;
}
