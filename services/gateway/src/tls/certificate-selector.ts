import type { SecureContext } from 'node:tls';
import type { TenantResolver } from '../pipeline/gateway-handler.js';
import type { DefaultCertificate } from './default-certificate.js';
import type { TenantCertificates } from './tenant-certificates.js';
import type { TlsMetrics } from './tls-metrics.js';

/**
 * SNI: the certificate for a handshake's server name. A name that resolves to a tenant with a
 * certificate for it gets that certificate; every other name (base-domain hosts, unknown names) gets
 * the default certificate.
 */
export class CertificateSelector {
  constructor(
    private readonly tenants: TenantResolver,
    private readonly tenantCertificates: TenantCertificates,
    private readonly defaultCertificate: DefaultCertificate,
    private readonly metrics?: TlsMetrics,
  ) {}

  select(servername: string): SecureContext {
    const tenant = this.tenants.resolveHost(servername);
    const context =
      tenant === undefined ? undefined : this.tenantCertificates.contextFor(tenant, servername.toLowerCase());
    if (context !== undefined) {
      this.metrics?.selected('tenant');
      return context;
    }
    this.metrics?.selected('default');
    return this.defaultCertificate.current.context;
  }

  /** As tls.Server's SNICallback. */
  readonly sniCallback = (
    servername: string,
    callback: (error: Error | null, context?: SecureContext) => void,
  ) => {
    callback(null, this.select(servername));
  };
}
