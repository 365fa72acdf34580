import { Counter, Gauge, type Registry } from 'prom-client';
import type { DefaultCertificate } from './default-certificate.js';
import type { TenantCertificates } from './tenant-certificates.js';

const DAY_MS = 24 * 3600 * 1000;

/** TLS series of the gateway: certificates' days to expiry (read at scrape time) and handshakes. */
export class TlsMetrics {
  readonly #selections: Counter<'certificate'>;
  readonly #handshakeErrors: Counter<'reason'>;

  constructor(
    registry: Registry,
    certificates: { defaultCertificate: DefaultCertificate; tenantCertificates: TenantCertificates },
  ) {
    new Gauge({
      name: 'vantageedge_gateway_tls_certificate_expiry_days',
      help: 'Days until each served certificate expires (negative once expired); certificate "default" is the platform certificate',
      labelNames: ['tenant', 'certificate'],
      registers: [registry],
      collect() {
        this.reset();
        const now = Date.now();
        const platform = certificates.defaultCertificate.current;
        this.labels('', 'default').set((platform.notAfterMs - now) / DAY_MS);
        for (const served of certificates.tenantCertificates.served()) {
          this.labels(served.tenantId, served.id).set((served.notAfterMs - now) / DAY_MS);
        }
      },
    });
    this.#selections = new Counter({
      name: 'vantageedge_gateway_tls_certificate_selections_total',
      help: 'TLS handshakes by the certificate chosen for their server name (tenant or default)',
      labelNames: ['certificate'],
      registers: [registry],
    });
    this.#handshakeErrors = new Counter({
      name: 'vantageedge_gateway_tls_handshake_errors_total',
      help: 'TLS connections that failed before a secure session was established, by reason',
      labelNames: ['reason'],
      registers: [registry],
    });
  }

  selected(kind: 'tenant' | 'default'): void {
    this.#selections.labels(kind).inc();
  }

  handshakeFailed(error: NodeJS.ErrnoException): void {
    this.#handshakeErrors.labels(handshakeErrorReason(error)).inc();
  }
}

/** A bounded label: OpenSSL's reason codes are a fixed set; anything else is "other". */
function handshakeErrorReason(error: NodeJS.ErrnoException): string {
  const code = error.code ?? '';
  if (/^ERR_SSL_[A-Z0-9_]+$/.test(code) && code.length <= 80) return code;
  if (code === 'ECONNRESET' || code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return code;
  return 'other';
}
