/**
 * The mark of a platform listener that is not tenant traffic: a gateway's admin port (/status,
 * /metrics, /readyz), a projector's metrics server, the control plane. Every response such a listener
 * sends carries this header, whatever the request and whoever answers it (404s and errors included).
 *
 * The gateway never relays a response that carries it: the proxy and WebSocket upgrades answer
 * 502 origin_address_blocked instead, as for an address the origin address policy refuses; the cache's
 * background refresh drops it and an active health probe that gets one fails. This is what keeps a
 * tenant from reading another replica's (or another service's) internal listener through its own
 * origin: the address policy knows only the replica's own listeners, and private ranges — where the
 * peers live — are allowed origins. It needs no configuration: the mark is on the listener itself.
 */
export const INTERNAL_LISTENER_HEADER = 'x-vantageedge-internal';

/** Which platform service answered (the header's value). */
export type InternalService = 'gateway-admin' | 'control-plane' | 'projector' | (string & {});

/** The header and its value, for `res.setHeader(...internalListenerHeader('…'))`. */
export function internalListenerHeader(service: InternalService): [string, string] {
  return [INTERNAL_LISTENER_HEADER, service];
}

/**
 * True when a response's headers carry the mark. `headers` as node and undici give them: names in
 * lower case (node's IncomingMessage.headers, undici's parsed response headers).
 */
export function isInternalListenerResponse(headers: Readonly<Record<string, unknown>> | undefined): boolean {
  return headers !== undefined && headers[INTERNAL_LISTENER_HEADER] !== undefined;
}
