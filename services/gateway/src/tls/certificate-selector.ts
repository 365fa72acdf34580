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
    const context = this.#tenantContext(servername);
    if (context !== undefined) {
      this.metrics?.selected('tenant');
      return context;
    }
    this.metrics?.selected('default');
    return this.defaultCertificate.current.context;
  }

  /** Whether a handshake naming `servername` is served a tenant's certificate (not the default one). */
  servesTenantCertificate(servername: string | undefined): boolean {
    return servername !== undefined && this.#tenantContext(servername) !== undefined;
  }

  #tenantContext(servername: string): SecureContext | undefined {
    const host = serverNameHost(servername);
    const tenant = this.tenants.resolveHost(host);
    return tenant === undefined ? undefined : this.tenantCertificates.contextFor(tenant, host);
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
