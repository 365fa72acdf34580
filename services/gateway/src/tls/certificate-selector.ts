import type { SecureContext } from 'node:tls';
import type { TenantResolver } from '../pipeline/gateway-handler.js';
import type { DefaultCertificate } from './default-certificate.js';
import type { ServedTenantCertificate, TenantCertificates } from './tenant-certificates.js';
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
   * The tenant certificate a handshake naming `servername` is served, or undefined for the default
   * certificate.
   */
  tenantCertificateFor(servername: string | undefined): ServedTenantCertificate | undefined {
    return servername === undefined ? undefined : this.#tenantCertificate(servername);
  }

  #tenantCertificate(servername: string): ServedTenantCertificate | undefined {
    const host = serverNameHost(servername);
    const tenant = this.tenants.resolveHost(host);
    return tenant === undefined ? undefined : this.tenantCertificates.certificateFor(tenant, host);
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
