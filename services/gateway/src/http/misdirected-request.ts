import type { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { isIP } from 'node:net';
import { TLSSocket } from 'node:tls';
import { arrivedOverHttp2 } from '@vantageedge/shared/http/request-version';
import { hostHeaderName } from '@vantageedge/shared/routing/host-lookup';
import { requestAuthority } from './request-authority.js';

export const MISDIRECTED_MESSAGE =
  'the certificate of this connection does not cover the requested host; open a connection for that host';

const TENANT_CERTIFICATE = Symbol('vantageedge.tenantCertificate');

/** A tenant's certificate, as the listener knows it. */
interface TenantCertificate {
  /** The tenant the certificate is served for. */
  readonly tenantId: string;
  readonly x509: X509Certificate;
}

/**
 * The tenant certificate served on a connection (or those it may have been: a resumed session's), and
 * the last host looked up against it; or, for a resumed session made with a certificate no longer
 * served, the one host it may answer.
 */
type Coverage =
  | { readonly certificates: readonly TenantCertificate[]; host?: string; covered?: boolean }
  | { readonly onlyHost: string };

type CertifiedSocket = TLSSocket & { [TENANT_CERTIFICATE]?: Coverage };

/**
 * The listener marks a connection that got a tenant's certificate (right after the handshake): the one
 * SNI chose for a full handshake. A resumed session presents none, SNICallback is not asked, and node
 * reports the default: it is marked with each certificate its host is served with (one per key type),
 * all of one tenant, and a request must be covered by every one of them.
 */
export function servedTenantCertificates(
  socket: TLSSocket,
  certificates: TenantCertificate | readonly TenantCertificate[],
): void {
  const served = Array.isArray(certificates) ? certificates : [certificates as TenantCertificate];
  if (served.length > 0) (socket as CertifiedSocket)[TENANT_CERTIFICATE] = { certificates: served };
}

/**
 * The listener marks a connection that resumed a session for `host` (its server name, as hostHeaderName
 * reads a Host) when neither a tenant certificate nor the default certificate covers that name now: the
 * session was made with a certificate since removed or moved to another tenant, whose names are not
 * known, and a client that still trusts it may send it any host that certificate named (HTTP/2 clients
 * coalesce them). Only requests for `host` itself, the name the client resumed the session for, are
 * answered on it.
 */
export function servedForgottenCertificate(socket: TLSSocket, host: string): void {
  (socket as CertifiedSocket)[TENANT_CERTIFICATE] = { onlyHost: host };
}

/**
 * A request, for a host served by tenant `hostTenantId`, that the tenant certificate of its TLS
 * connection may not answer (RFC 9110 §7.4: 421 Misdirected Request). SNI picked the certificate of the
 * custom domain the client connected for; a request for another tenant's host on that connection would
 * have one tenant's certificate vouch for another's content, even when its names cover that host (a
 * tenant's certificate may also name another tenant's domain or the platform's base domain, and HTTP/2
 * clients coalesce every host it covers onto the connection). The tenant's own hosts the certificate
 * covers may share the connection. The default certificate is the platform's own (every name without a
 * tenant certificate, clients without SNI): requests on it are not checked. Hosts that are not
 * `host[:port]` are refused elsewhere.
 */
export function isMisdirected(req: IncomingMessage, hostTenantId: string): boolean {
  const coverage = tenantCertificateOf(req);
  if (coverage === undefined) return false;
  const authority = requestAuthority(req.headers);
  const host = authority === undefined ? undefined : hostHeaderName(authority);
  if ('onlyHost' in coverage) return host !== undefined && host !== '' && host !== coverage.onlyHost;
  if (coverage.certificates.some((certificate) => certificate.tenantId !== hostTenantId)) return true;
  if (host === undefined || host === '') return false;
  // One host remembered, not every host a client names: a connection's requests are for one host or few.
  if (coverage.host !== host) {
    const name = host.charCodeAt(0) === 91 ? host.slice(1, -1) : host; // an IP literal's "[…]"
    coverage.host = host;
    coverage.covered = coverage.certificates.every(
      ({ x509 }) => (isIP(name) === 0 ? x509.checkHost(name) : x509.checkIP(name)) !== undefined,
    );
  }
  return coverage.covered !== true;
}

function tenantCertificateOf(req: IncomingMessage): Coverage | undefined {
  if (arrivedOverHttp2(req)) {
    // The session's socket is node's proxy of the TLS socket, which reads the socket's own properties.
    const socket = (req as unknown as Http2ServerRequest).stream.session?.socket as
      | CertifiedSocket
      | undefined;
    return socket?.[TENANT_CERTIFICATE];
  }
  return req.socket instanceof TLSSocket ? (req.socket as CertifiedSocket)[TENANT_CERTIFICATE] : undefined;
}
