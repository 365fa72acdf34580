import { setTimeout as sleep } from 'node:timers/promises';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { TenantResolver } from '../pipeline/gateway-handler.js';
import { type CertificateKeyType, clientKeyTypes } from './client-key-types.js';
import type { DefaultCertificate } from './default-certificate.js';
import type { ServedTenantCertificate, TenantCertificates } from './tenant-certificates.js';
import type { TlsMetrics } from './tls-metrics.js';

/**
 * While the replica has not read every tenant's config (see unknownHostAnswer): `configLoaded` says
 * when it has, and a handshake for a name it has no certificate for yet waits for it, up to `waitMs`.
 */
export interface CertificateLoading {
  configLoaded: () => boolean;
  waitMs: number;
}

/** How often a handshake waiting for the config looks again. */
const LOADING_POLL_MS = 100;

/**
 * SNI: the certificate for a handshake's server name. A name that resolves to a tenant with a
 * certificate for it gets that certificate (of a key type the client accepts, when the tenant has one
 * of each); every other name (base-domain hosts, unknown names) gets the default certificate.
 */
export class CertificateSelector {
  /** The tenant certificate SNI chose for each handshake it chose one for. */
  readonly #chosen = new WeakMap<TLSSocket, ServedTenantCertificate>();

  constructor(
    private readonly tenants: TenantResolver,
    private readonly tenantCertificates: TenantCertificates,
    private readonly defaultCertificate: DefaultCertificate,
    private readonly metrics?: TlsMetrics,
    private readonly loading?: CertificateLoading,
  ) {}

  /**
   * Whether a handshake naming `servername` waits before it is given a certificate: the replica is
   * still loading the tenants' config, and neither a tenant's certificate nor the default one covers
   * the name (a custom domain whose tenant is not read yet would be sent the default certificate,
   * which every client refuses).
   */
  waitsForConfig(servername: string): boolean {
    return (
      this.loading !== undefined &&
      !this.loading.configLoaded() &&
      this.#tenantCertificate(servername, undefined) === undefined &&
      !this.defaultCertificateCovers(servername)
    );
  }

  /**
   * For a name that waitsForConfig: resolves true once the config is loaded or a tenant's certificate
   * covers the name, or after `waitMs`; false as soon as `abandoned` aborts (the client is gone: nothing
   * is left to answer, and the wait must cost nothing more).
   */
  async configSettled(servername: string, abandoned?: AbortSignal): Promise<boolean> {
    const loading = this.loading;
    if (loading === undefined) return abandoned?.aborted !== true;
    const deadline = Date.now() + loading.waitMs;
    try {
      while (
        abandoned?.aborted !== true &&
        Date.now() < deadline &&
        !loading.configLoaded() &&
        this.#tenantCertificate(servername, undefined) === undefined
      ) {
        await sleep(LOADING_POLL_MS, undefined, abandoned ? { signal: abandoned } : {});
      }
    } catch {
      // The sleep, aborted by `abandoned`.
    }
    return abandoned?.aborted !== true;
  }

  select(servername: string, accepts?: ReadonlySet<CertificateKeyType>, socket?: TLSSocket): SecureContext {
    const served = this.#tenantCertificate(servername, accepts);
    if (served !== undefined) {
      if (socket !== undefined) this.#chosen.set(socket, served);
      this.metrics?.selected('tenant');
      return served.context;
    }
    this.metrics?.selected('default');
    return this.defaultCertificate.current.context;
  }

  /**
   * The tenant certificate `socket`'s full handshake was served, or undefined for the default
   * certificate: the one SNI chose, not the one its name would get now (the snapshot may have removed
   * or replaced it while the handshake went on, and the client holds the one it was sent).
   */
  chosenFor(socket: TLSSocket): ServedTenantCertificate | undefined {
    return this.#chosen.get(socket);
  }

  /**
   * Every tenant certificate a handshake naming `servername` may be served (one per key type, best
   * first), or undefined for the default certificate: what a resumed session may have been made with.
   */
  tenantCertificatesFor(servername: string | undefined): readonly ServedTenantCertificate[] | undefined {
    if (servername === undefined) return undefined;
    const host = serverNameHost(servername);
    const tenant = this.tenants.resolveHost(host);
    return tenant === undefined ? undefined : this.tenantCertificates.certificatesFor(tenant, host);
  }

  /** Whether the default certificate covers `servername` (as a client verifying it would check). */
  defaultCertificateCovers(servername: string): boolean {
    return this.defaultCertificate.current.x509.checkHost(serverNameHost(servername)) !== undefined;
  }

  #tenantCertificate(
    servername: string,
    accepts: ReadonlySet<CertificateKeyType> | undefined,
  ): ServedTenantCertificate | undefined {
    const host = serverNameHost(servername);
    const tenant = this.tenants.resolveHost(host);
    return tenant === undefined ? undefined : this.tenantCertificates.certificateFor(tenant, host, accepts);
  }

  /**
   * As tls.Server's SNICallback. Node calls it on the handshake's TLSSocket, which knows the client's
   * signature algorithms by then. One context per handshake: node serves only one key pair of a context
   * handed back here (nodejs/node#54235), so the key type is chosen here rather than by OpenSSL.
   */
  readonly sniCallback = sniCallbackOf(this);
}

function sniCallbackOf(selector: CertificateSelector) {
  return function sniCallback(
    this: unknown,
    servername: string,
    callback: (error: Error | null, context?: SecureContext) => void,
  ): void {
    const socket = this instanceof TLSSocket ? this : undefined;
    const answer = () =>
      callback(
        null,
        socket ? selector.select(servername, clientKeyTypes(socket), socket) : selector.select(servername),
      );
    if (!selector.waitsForConfig(servername)) {
      answer();
      return;
    }
    // A client gone while its handshake waits ends the wait: nothing is left to answer.
    if (socket?.destroyed) return;
    const gone = new AbortController();
    const abandon = () => gone.abort();
    socket?.once('close', abandon);
    void selector.configSettled(servername, gone.signal).then((settled) => {
      socket?.off('close', abandon);
      if (settled) answer();
    });
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
