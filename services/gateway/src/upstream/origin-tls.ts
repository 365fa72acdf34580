import { createHash, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import {
  checkServerIdentity,
  createSecureContext,
  DEFAULT_CIPHERS,
  type DetailedPeerCertificate,
  getCACertificates,
  type PeerCertificate,
  type SecureContext,
} from 'node:tls';
import type { OriginTls } from '@vantageedge/shared/domain/gateway-config';
import { certificatesOfPem } from '@vantageedge/shared/tls/certificate-bundle';
import type { buildConnector } from 'undici';
import type { OriginClientCertificate } from './origin-client-certificate.js';
import { signatureCheckMs } from './origin-handshake-cost.js';
import { preparingConnections } from './prepared-connections.js';

/**
 * An origin's TLS settings compiled once, when its snapshot arrives: every connection to its https
 * targets (the request pools, active health checks, WebSocket upgrades) uses these.
 */
export interface OriginTlsSettings {
  /** Passed to tls.connect: verification on or off, and the origin's own trust store when it has one. */
  readonly connectOptions: {
    readonly rejectUnauthorized: boolean;
    /** ORIGIN_CIPHERS; also in `secureContext` when there is one (tls.connect reads only the context's). */
    readonly ciphers: string;
    readonly secureContext?: SecureContext;
    readonly checkServerIdentity?: (host: string, certificate: PeerCertificate) => Error | undefined;
  };
  /** The configured server_name (SNI and verified name); none: the target URL's host. */
  readonly serverName: string | undefined;
  /**
   * Equal for equal settings: connections with other settings never share a connector, and so never
   * resume a TLS session another trust store verified.
   */
  readonly key: string;
  /**
   * The chain a handshake verified is checked again here, signature by signature (`verify_depth`): its
   * handshakes cost the replica up to twice what OpenSSL's checks do.
   */
  readonly rechecksChain: boolean;
  /** SHA-256 fingerprints of the trust store's certificates: the origin's CAs, else the replica's store. */
  readonly trustStore: () => ReadonlySet<string>;
  /**
   * What checking a signature with each of the origin's own CA certificates costs (0 with the replica's
   * store): OpenSSL looks for each issuer in the trust store before the certificates the origin sent, so
   * its chain may run through them where node's does not.
   */
  readonly trustStoreCheckMs: number;
}

/**
 * The TLS 1.2 suites origin connections offer: node's, without finite-field Diffie-Hellman (DHE). In a
 * DHE handshake the server picks the group, any odd number of up to 10,000 bits (OpenSSL does not test
 * it for primality), and the client raises numbers of that length to exponents as long, twice, on the
 * thread every request of the replica waits for: 8,192 bits take about 0.3 s of CPU, 10,000 bits about
 * 0.8 s, for one signature on the origin's side, asked by each health probe and each new connection on
 * every replica. ECDHE costs the client about a millisecond at most, whichever offered curve the origin
 * picks. TLS 1.3 offers only named groups (of finite-field ones, ffdhe2048 and ffdhe3072, whose short
 * exponents cost a few milliseconds).
 */
export const ORIGIN_CIPHERS = `${DEFAULT_CIPHERS}:!kDHE`;

export const DEFAULT_ORIGIN_TLS: OriginTlsSettings = {
  connectOptions: { rejectUnauthorized: true, ciphers: ORIGIN_CIPHERS },
  serverName: undefined,
  key: 'verify',
  rechecksChain: false,
  trustStore: () => defaultTrustAnchors(),
  trustStoreCheckMs: 0,
};

/**
 * `clientCertificate`: the origin's tls.client_certificate_id, opened from the tenant's own snapshot
 * (none: no certificate is presented, and an origin that asks for one refuses the handshake).
 */
export function compileOriginTls(
  tls: OriginTls | undefined,
  clientCertificate?: OriginClientCertificate,
): OriginTlsSettings {
  if (
    tls === undefined ||
    (tls.verify &&
      tls.ca_certificates === null &&
      tls.server_name === null &&
      tls.verify_depth === null &&
      clientCertificate === undefined)
  ) {
    return DEFAULT_ORIGIN_TLS;
  }
  const serverName = tls.server_name ?? undefined;
  const verifyDepth = tls.verify ? tls.verify_depth : null;
  const ownCas = tls.ca_certificates === null ? undefined : certificatesOfPem(tls.ca_certificates);
  const ownStore = ownCas === undefined ? undefined : fingerprintsOf(ownCas);
  const trustAnchors = verifyDepth === null ? new Set<string>() : (ownStore ?? defaultTrustAnchors());
  // One context holds the trust (the origin's CAs, else the replica's store) and the client certificate.
  const needsContext = tls.ca_certificates !== null || clientCertificate !== undefined;
  const connectOptions: OriginTlsSettings['connectOptions'] = {
    rejectUnauthorized: tls.verify,
    ciphers: ORIGIN_CIPHERS,
    ...(needsContext
      ? {
          secureContext: createSecureContext({
            ciphers: ORIGIN_CIPHERS,
            ...(tls.ca_certificates === null ? {} : { ca: tls.ca_certificates }),
            ...(clientCertificate === undefined
              ? {}
              : { cert: clientCertificate.certificatePem, key: clientCertificate.privateKeyPem }),
          }),
        }
      : {}),
    // Node verifies the name it sends as SNI; an IP address is never sent (RFC 6066), so it is checked here.
    // Node's TLS has no verification depth: the chain it verified is counted here, after the handshake.
    ...(serverName === undefined && verifyDepth === null
      ? {}
      : {
          checkServerIdentity: (host: string, cert: PeerCertificate) =>
            checkServerIdentity(serverName ?? host, cert) ??
            (verifyDepth === null
              ? undefined
              : chainTooLong(cert as DetailedPeerCertificate, verifyDepth, trustAnchors)),
        }),
  };
  const key = createHash('sha256')
    .update(
      JSON.stringify([
        tls.verify,
        tls.ca_certificates,
        tls.server_name,
        tls.verify_depth,
        clientCertificate === undefined ? null : [clientCertificate.id, clientCertificate.fingerprint],
      ]),
    )
    .digest('base64url');
  return {
    connectOptions,
    serverName,
    key,
    rechecksChain: verifyDepth !== null,
    trustStore: ownStore === undefined ? defaultTrustAnchors : () => ownStore,
    trustStoreCheckMs: (ownCas ?? []).reduce((sum, ca) => sum + signatureCheckMs(ca.publicKey), 0),
  };
}

/**
 * A refusal when the verified chain of `leaf` has more than `verifyDepth` intermediate CA certificates;
 * OpenSSL's depth counts neither the leaf nor the trust anchor. The chain is the one node describes
 * (issuerCertificate), which node builds by itself after the handshake: for each certificate the first
 * the origin sent (then one of the trust store) whose names fit, checked no further, where OpenSSL's
 * verification passes over an expired candidate for a valid one. Counted only when it is a chain OpenSSL
 * could have verified — each certificate above the leaf valid now and the issuer of the one below by its
 * signature, up to a self-signed CA of `anchors` — and refused otherwise: an origin listing an expired or
 * forged certificate of its intermediate's name ahead of the real one makes node's chain stop short.
 */
function chainTooLong(
  leaf: DetailedPeerCertificate,
  verifyDepth: number,
  anchors: ReadonlySet<string>,
): Error | undefined {
  const now = Date.now();
  let below = new X509Certificate(leaf.raw);
  let above = 0;
  for (let at: DetailedPeerCertificate | undefined = leaf.issuerCertificate; ; at = at.issuerCertificate) {
    // Self-signed: node's chain ends with the certificate as its own issuer.
    if (at?.fingerprint256 === below.fingerprint256 && anchors.has(below.fingerprint256)) break;
    if (at === undefined || at.fingerprint256 === below.fingerprint256) return chainNotCountable();
    const issuer = new X509Certificate(at.raw);
    if (!validAt(issuer, now) || !below.verify(issuer.publicKey)) return chainNotCountable();
    above++;
    // More than allowed whatever lies above: nothing more to check (a chain may loop).
    if (above - 1 > verifyDepth) break;
    below = issuer;
  }
  const intermediates = Math.max(0, above - 1);
  if (intermediates <= verifyDepth) return undefined;
  return Object.assign(
    new Error(
      `certificate chain too long: ${intermediates > verifyDepth + 1 ? 'over ' : ''}${intermediates} intermediate CA certificates, tls.verify_depth allows ${verifyDepth}`,
    ),
    { code: 'CERT_CHAIN_TOO_LONG' },
  );
}

function chainNotCountable(): Error {
  return Object.assign(
    new Error(
      'certificate chain too long: the chain node reports is not one OpenSSL verifies (an expired, unsigned or untrusted certificate in it), so tls.verify_depth cannot be checked',
    ),
    { code: 'CERT_CHAIN_TOO_LONG' },
  );
}

function validAt(certificate: X509Certificate, nowMs: number): boolean {
  return certificate.validFromDate.getTime() <= nowMs && nowMs <= certificate.validToDate.getTime();
}

/** SHA-256 fingerprints (as X509Certificate gives them) of CA certificates. */
function fingerprintsOf(certificates: readonly X509Certificate[]): ReadonlySet<string> {
  return new Set(certificates.map((certificate) => certificate.fingerprint256));
}

let defaultAnchors: ReadonlySet<string> | undefined;
/** The replica's default trust store (node's CAs, NODE_EXTRA_CA_CERTS, the system's when enabled). */
function defaultTrustAnchors(): ReadonlySet<string> {
  if (defaultAnchors === undefined) {
    defaultAnchors = fingerprintsOf(getCACertificates('default').map((pem) => new X509Certificate(pem)));
  }
  return defaultAnchors;
}

/**
 * The SNI of a connection to `hostname` (the target URL's host, never a request's Host header): the
 * configured server name, else the host; none for an IP address (RFC 6066).
 */
export function serverNameFor(settings: OriginTlsSettings, hostname: string): string | undefined {
  const name = settings.serverName ?? hostname;
  return isIP(name) === 0 ? name : undefined;
}

/**
 * Certificate verification and TLS handshake failures (node's codes for OpenSSL's X509_V_ERR_* and
 * its ERR_TLS_* / ERR_SSL_* errors): the origin was never sent the request.
 */
const CERTIFICATE_ERRORS = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

/** The TLS failure's code when `error` (or its cause) is one; undefined otherwise. */
export function originTlsErrorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current !== undefined && depth < 3; depth++) {
    const code = (current as { code?: unknown } | null)?.code;
    if (typeof code === 'string') {
      if (CERTIFICATE_ERRORS.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_')) {
        return code;
      }
    }
    current = (current as { cause?: unknown } | null)?.cause;
  }
  return undefined;
}

/**
 * An origin may refuse a connection after the handshake completed on the gateway's side: in TLS 1.3 a
 * client certificate it requires and did not get (or refused) is answered with an alert after the
 * client's Finished, when the request may already be written. The socket is destroyed as that alert
 * arrives, so the request (or probe) fails with it (502 origin_tls_error, a connect failure), not with
 * the "other side closed" of the end of stream that follows it.
 */
export function failingWithTlsAlerts(connector: buildConnector.connector): buildConnector.connector {
  return preparingConnections(connector, (socket, options) => {
    if (options.protocol !== 'https:') return;
    socket.prependListener('error', (failure: Error) => {
      if (originTlsErrorCode(failure) !== undefined && !socket.destroyed) socket.destroy();
    });
  });
}

/** Calls `report` with each TLS failure of `connector`'s connections (the error itself goes on as it was). */
export function reportingTlsFailures(
  connector: buildConnector.connector,
  report: (reason: string, error: Error, hostname: string) => void,
): buildConnector.connector {
  return (options, callback) => {
    // Typed void, but undici's own connectors return the socket (the connect timeout destroys it).
    const connect = connector as (...args: Parameters<buildConnector.connector>) => unknown;
    return connect(options, (error, socket) => {
      if (error === null) {
        // A refusal after the handshake (failingWithTlsAlerts) is reported as one during it.
        socket.once('error', (failure: Error) => {
          const reason = originTlsErrorCode(failure);
          if (reason !== undefined) report(reason, failure, options.hostname);
        });
        callback(null, socket);
        return;
      }
      const reason = originTlsErrorCode(error);
      if (reason !== undefined) report(reason, error, options.hostname);
      callback(error, null);
    }) as undefined;
  };
}
