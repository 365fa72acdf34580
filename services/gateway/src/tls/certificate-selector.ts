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
    const served = this.#tenantCertificate(servername);
    if (served !== undefined) {
      this.metrics?.selected('tenant');
      return served.context;
    }
    this.metrics?.selected('default');
    return this.defaultCertificate.current.context;
  }

  /**
   * The id of the tenant whose certificate a handshake naming `servername` is served, or undefined for
   * the default certificate.
   */
  tenantCertificateHolder(servername: string | undefined): string | undefined {
    return servername === undefined ? undefined : this.#tenantCertificate(servername)?.tenantId;
  }

  #tenantCertificate(servername: string): { tenantId: string; context: SecureContext } | undefined {
    const host = serverNameHost(servername);
    const tenant = this.tenants.resolveHost(host);
    const context = tenant === undefined ? undefined : this.tenantCertificates.contextFor(tenant, host);
    return tenant === undefined || context === undefined ? undefined : { tenantId: tenant.id, context };
  }

  /** As tls.Server's SNICallback. */
  readonly sniCallback = (
    servername: string,
    callback: (error: Error | null, context?: SecureContext) => void,
  ) => {
    callback(null, this.select(servername));
  };
}

/**
 * A server name as the host tables hold it: lower-case, and an absolute name's trailing dot dropped, as
 * for a Host header, so that `api.example.com.` gets the certificate of the host it is routed to.
 */
function serverNameHost(servername: string): string {
  const host = servername.toLowerCase();
  return host.endsWith('.') ? host.slice(0, -1) : host;
}
