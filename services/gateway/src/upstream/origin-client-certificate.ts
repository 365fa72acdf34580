import type { OriginConfig, SnapshotCertificate } from '@vantageedge/shared/domain/gateway-config';
import type { Logger } from '@vantageedge/shared/observability/logger';
import { privateKeyIssue } from '@vantageedge/shared/tls/certificate-bundle';
import {
  certificateKeyContext,
  type KeyRing,
  openPrivateKey,
} from '@vantageedge/shared/tls/private-key-envelope';

/** A tenant certificate opened to be presented to an origin that asks for a client certificate (mTLS). */
export interface OriginClientCertificate {
  readonly id: string;
  /** Equal for the same certificate: connections presenting another one never share a connector. */
  readonly fingerprint: string;
  readonly certificatePem: string;
  /** In this replica's memory only: never logged, never written anywhere. */
  readonly privateKeyPem: string;
}

/**
 * Opens the sealed key of `certificate`, one of `tenantId`'s own (its snapshot's), for an origin's
 * connections. The key opens only for the tenant and certificate it was sealed for: another tenant's
 * certificate never opens under this tenant's id. Throws, with a message naming no key material, when
 * it cannot be used.
 */
export function openOriginClientCertificate(
  ring: KeyRing | undefined,
  tenantId: string,
  certificate: SnapshotCertificate,
): OriginClientCertificate {
  if (ring === undefined) throw new Error('CERTIFICATE_ENCRYPTION_KEY is not set');
  const privateKeyPem = openPrivateKey(
    ring,
    certificate.private_key,
    certificateKeyContext(tenantId, certificate.id),
  );
  const keyIssue = privateKeyIssue(privateKeyPem);
  if (keyIssue !== undefined) throw new Error(`its private key ${keyIssue}`);
  return {
    id: certificate.id,
    fingerprint: certificate.fingerprint_sha256,
    certificatePem: certificate.certificate_pem,
    privateKeyPem,
  };
}

/**
 * For each origin compiled from a snapshot: its client certificate opened (`certificate` is the one of
 * the tenant's snapshot it names). One missing or that does not open is logged (never its key) and none
 * is presented: an origin that requires one then refuses the handshake (502 origin_tls_error).
 */
export function originClientCertificates(ring: KeyRing | undefined, logger: Logger) {
  return (
    origin: OriginConfig,
    tenantId: string,
    certificate: SnapshotCertificate | undefined,
  ): { clientCertificate?: OriginClientCertificate } => {
    const certificateId = origin.tls.client_certificate_id;
    if (certificateId === null) return {};
    const notPresented = (problem: string) => {
      logger.warn('origin client certificate not presented', {
        tenant_id: tenantId,
        origin_id: origin.id,
        certificate_id: certificateId,
        problem,
      });
      return {};
    };
    if (certificate === undefined) return notPresented('the tenant has no such certificate');
    try {
      return { clientCertificate: openOriginClientCertificate(ring, tenantId, certificate) };
    } catch (error) {
      return notPresented((error as Error).message);
    }
  };
}
