import { HOP_BY_HOP_HEADERS } from '../http/hop-by-hop-headers.js';
import {
  GATEWAY_HEADER_PREFIX,
  REQUEST_HEADERS_GATEWAY_WRITES,
  ROUTING_OVERRIDE_HEADERS,
  TRUSTED_PROXY_HEADERS,
} from './route-policies.js';

/**
 * Request headers the gateway replaces or never forwards from a client (names in lower case). The
 * gateway's forwarding (proxy/forwarded-headers.ts) and its request transform read this one set, and so
 * does explain, which tells what a transform leaves of a request.
 */
export const REQUEST_DROPPED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP_HEADERS,
  ...TRUSTED_PROXY_HEADERS,
  'host',
  'expect', // node answered 100-continue already; undici refuses to send it
  'x-api-key', // a tenant's key is the gateway's business, never the origin's
  ...REQUEST_HEADERS_GATEWAY_WRITES,
  // IIS, Symfony and others route on X-Original-URL / X-Rewrite-URL instead of the request line, and
  // Express's method-override, Rails, Laravel and ASP.NET take the method from the method-override
  // headers: the gateway chose the route (its methods and its auth), so an origin must never see
  // another one — not even through a trusted proxy, which passes a client's header on unchanged.
  ...ROUTING_OVERRIDE_HEADERS,
]);

/**
 * Whether the gateway drops this request header (lower case) when a client sends it, always or on some
 * routes (Authorization carrying an API key or a Clerk session). A route's `add` of one adds to nothing:
 * the client's line is removed first, so that a spoofed X-Client-IP never rides along with the route's.
 */
export function droppedFromClients(name: string): boolean {
  return REQUEST_DROPPED.has(name) || name === 'authorization' || name.startsWith(GATEWAY_HEADER_PREFIX);
}
