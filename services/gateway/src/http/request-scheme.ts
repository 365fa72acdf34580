import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { arrivedOverHttp2 } from '@vantageedge/shared/http/request-version';

const OVER_TLS: readonly string[] = ['https'];
/** `https` too: a proxy in front that ended the client's TLS may speak h2c and keep the client's scheme. */
const OVER_CLEARTEXT: readonly string[] = ['http', 'https'];

/**
 * The `:scheme` values an HTTP/2 request may name on its connection (undefined for HTTP/1.x, which has
 * no scheme of its own). An `http` request over TLS, or any other scheme, names a URI the gateway does
 * not serve on that connection: an origin that reads the scheme would see another request than the
 * client made. nghttp2 already resets a request without `:scheme`, or with one that is no scheme.
 */
function schemesOfConnection(req: IncomingMessage): readonly string[] | undefined {
  if (!arrivedOverHttp2(req)) return undefined;
  const { stream } = req as unknown as Http2ServerRequest;
  return stream.session?.encrypted === false ? OVER_CLEARTEXT : OVER_TLS;
}

function http2Scheme(req: IncomingMessage): string {
  return (req as unknown as Http2ServerRequest).scheme;
}

/** Why the request's `:scheme` is refused (400 invalid_scheme), or undefined when its connection carries it. */
export function schemeRefusal(req: IncomingMessage): string | undefined {
  const accepted = schemesOfConnection(req);
  if (accepted === undefined) return undefined;
  const scheme = http2Scheme(req);
  if (accepted.includes(scheme)) return undefined;
  return `the :scheme of a request on this connection must be ${accepted.join(' or ')} (it is ${scheme})`;
}
