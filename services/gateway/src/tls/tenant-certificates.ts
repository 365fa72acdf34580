import { X509Certificate } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import type { SnapshotCertificate } from '@vantageedge/shared/domain/gateway-config';
import {
  certificatesOfPem,
  privateKeyIssue,
  serverExtendedUsageIssue,
} from '@vantageedge/shared/tls/certificate-bundle';
import {
  certificateKeyContext,
  type KeyRing,
  openPrivateKey,
} from '@vantageedge/shared/tls/private-key-envelope';
import type { CompiledTenant } from '../config/compiled-tenant.js';
import { ROUTE_ONLY, type RoutePolicy } from '../pipeline/stage.js';
import type { CertificateKeyType } from './client-key-types.js';
import { secureContextFor } from './tls-policy.js';

/** One tenant certificate ready to serve. */
export interface ServedTenantCertificate {
  readonly id: string;
  readonly tenantId: string;
  readonly fingerprint: string;
  readonly context: SecureContext;
  /** The leaf certificate, for the names it covers. */
  readonly x509: X509Certificate;
  readonly keyType: CertificateKeyType;
  readonly notAfterMs: number;
  /** The hosts it is served for: its domains that are verified hosts of the tenant. */
  readonly hosts: readonly string[];
}

interface TenantEntry {
  /** The compiled tenant these certificates were built for. */
  readonly owner: CompiledTenant;
  readonly byId: ReadonlyMap<string, ServedTenantCertificate>;
  /**
   * Certificates not served, as stored, by id: judged (and logged) once, not again at each of the
   * tenant's snapshots, which any config change brings.
   */
  readonly refused: ReadonlyMap<string, SnapshotCertificate>;
}

export interface TenantCertificatesOptions {
  /** Opens sealed private keys; without it no tenant certificate is served. */
  keyRing: KeyRing | undefined;
  onWarning?: (tenantId: string, message: string) => void;
}

/**
 * Tenant certificates from snapshots, as SecureContexts by host. A pipeline policy with no route stage
 * (it only follows tenants as the config store applies them): each snapshot's certificates are compiled
 * with the tenant (a private key is opened and a context built only for a certificate not seen before,
 * and one not served is judged and logged once), so a handshake only looks them up. The SNI lookup goes
 * through the tenant that serves the host, so a certificate is only ever presented for a host that
 * resolves to its own tenant.
 */
export class TenantCertificates implements RoutePolicy {
  readonly name = 'tenant_certificates';

  readonly #options: TenantCertificatesOptions;
  readonly #byTenant = new Map<string, TenantEntry>();
  readonly #byCompiled = new WeakMap<CompiledTenant, ReadonlyMap<string, HostCertificates>>();

  constructor(options: TenantCertificatesOptions) {
    this.#options = options;
  }

  readonly readsOrigins = false;
  readonly compiledFrom = ROUTE_ONLY;

  /** Certificates are per tenant, never per route: no route gets a stage. */
  compileRoute(): null {
    return null;
  }

  tenantApplied(tenant: CompiledTenant): void {
    const certificates = tenant.snapshot.certificates;
    const previous = this.#byTenant.get(tenant.id);
    if (certificates.length === 0) {
      this.#byTenant.delete(tenant.id);
      return;
    }
    const hosts = new Set(tenant.hostNames);
    const byId = new Map<string, ServedTenantCertificate>();
    const refused = new Map<string, SnapshotCertificate>();
    const byHost = new Map<string, HostCertificates>();
    for (const certificate of certificates) {
      const served = certificate.domains.map((domain) => domain.toLowerCase()).filter((d) => hosts.has(d));
      if (served.length === 0) continue;
      const refusedBefore = previous?.refused.get(certificate.id);
      if (refusedBefore !== undefined && sameStored(refusedBefore, certificate)) {
        refused.set(certificate.id, certificate); // this snapshot's copy: the older one can go
        continue;
      }
      const reusable = previous?.byId.get(certificate.id);
      const compiled =
        reusable?.fingerprint === certificate.fingerprint_sha256
          ? { ...reusable, hosts: served }
          : this.#build(tenant.id, certificate, served);
      if (compiled === undefined) {
        refused.set(certificate.id, certificate);
        continue;
      }
      byId.set(certificate.id, compiled);
      for (const host of served) byHost.set(host, withCandidate(byHost.get(host), compiled));
    }
    this.#byTenant.set(tenant.id, { owner: tenant, byId, refused });
    this.#byCompiled.set(tenant, byHost);
  }

  tenantRetired(tenant: CompiledTenant): void {
    // Replaced tenants were re-compiled first (their entry has a new owner); removed ones are dropped.
    if (this.#byTenant.get(tenant.id)?.owner === tenant) this.#byTenant.delete(tenant.id);
  }

  /**
   * The certificate of `tenant` for `host` (lower-case), if it has one: the one valid longest among
   * those of a key type the client accepts (`accepts`; undefined: unknown, any), else the one valid
   * longest (the client may accept it after all: a TLS 1.2 client without signature algorithms).
   */
  certificateFor(
    tenant: CompiledTenant,
    host: string,
    accepts?: ReadonlySet<CertificateKeyType>,
  ): ServedTenantCertificate | undefined {
    const candidates = this.#byCompiled.get(tenant)?.get(host);
    if (candidates === undefined) return undefined;
    return (accepts && candidates.find((c) => accepts.has(c.keyType))) ?? candidates[0];
  }

  /** Every certificate of `tenant` for `host` (lower-case), one per key type, best first, if it has any. */
  certificatesFor(tenant: CompiledTenant, host: string): readonly ServedTenantCertificate[] | undefined {
    return this.#byCompiled.get(tenant)?.get(host);
  }

  /** Every certificate being served, for the expiry metric. */
  *served(): IterableIterator<ServedTenantCertificate> {
    for (const entry of this.#byTenant.values()) yield* entry.byId.values();
  }

  #build(
    tenantId: string,
    certificate: SnapshotCertificate,
    hosts: readonly string[],
  ): ServedTenantCertificate | undefined {
    const ring = this.#options.keyRing;
    if (ring === undefined) {
      this.#warn(tenantId, `certificate ${certificate.id} not served: CERTIFICATE_ENCRYPTION_KEY is not set`);
      return undefined;
    }
    try {
      const privateKeyPem = openPrivateKey(
        ring,
        certificate.private_key,
        certificateKeyContext(tenantId, certificate.id),
      );
      // A key stored before today's rules (an RSA key over 4096 bits) is not served.
      const keyIssue = privateKeyIssue(privateKeyPem);
      if (keyIssue !== undefined) {
        this.#warn(tenantId, `certificate ${certificate.id} not served: its private key ${keyIssue}`);
        return undefined;
      }
      const x509 = new X509Certificate(certificate.certificate_pem);
      // One stored before uploads checked its usages: served, it would fail every verifying client's
      // handshake in place of the host's other certificate. (One whose key usage lacks digitalSignature,
      // refused at upload too, is still served: OpenSSL-based clients accept it.)
      const usageIssue = serverExtendedUsageIssue(certificatesOfPem(certificate.certificate_pem));
      if (usageIssue !== undefined) {
        this.#warn(tenantId, `certificate ${certificate.id} not served: ${usageIssue}`);
        return undefined;
      }
      return {
        id: certificate.id,
        tenantId,
        fingerprint: certificate.fingerprint_sha256,
        context: secureContextFor(certificate.certificate_pem, privateKeyPem),
        x509,
        // Uploads accept RSA and EC keys only.
        keyType: x509.publicKey.asymmetricKeyType === 'rsa' ? 'rsa' : 'ec',
        notAfterMs: Date.parse(certificate.not_after),
        hosts,
      };
    } catch (error) {
      this.#warn(tenantId, `certificate ${certificate.id} not served: ${(error as Error).message}`);
      return undefined;
    }
  }

  #warn(tenantId: string, message: string): void {
    this.#options.onWarning?.(tenantId, message);
  }
}

/** Whether two snapshots hold a certificate as stored alike (a resealed key is judged again). */
function sameStored(a: SnapshotCertificate, b: SnapshotCertificate): boolean {
  return (
    a.fingerprint_sha256 === b.fingerprint_sha256 &&
    a.private_key.kek_id === b.private_key.kek_id &&
    a.private_key.wrapped_key === b.private_key.wrapped_key &&
    a.private_key.ciphertext === b.private_key.ciphertext &&
    a.certificate_pem === b.certificate_pem
  );
}

/** A host's certificates: the best of each key type, best first. */
type HostCertificates = readonly ServedTenantCertificate[];

/**
 * `candidates` with `certificate`, which replaces the one of its key type if it is better: valid longer
 * or, on a tie (validity has second precision), the later upload, which comes later in the snapshot.
 */
function withCandidate(
  candidates: HostCertificates | undefined,
  certificate: ServedTenantCertificate,
): HostCertificates {
  const rival = candidates?.find((c) => c.keyType === certificate.keyType);
  const others = candidates ?? [];
  if (rival !== undefined && rival.notAfterMs > certificate.notAfterMs) return others;
  const kept = others.filter((c) => c !== rival);
  // Best first, as for its type: a client that accepts every key type gets the one a host with one
  // certificate per name would serve (the sort is stable, so the later upload first on a tie).
  return [certificate, ...kept].sort((a, b) => b.notAfterMs - a.notAfterMs);
}
