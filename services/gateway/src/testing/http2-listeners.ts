import { type DefaultCertificateFiles, writeDefaultCertificateFiles } from './default-certificate-files.js';
import { startTestGateway, startTestOrigin, type TestGateway, type TestOrigin } from './gateway-harness.js';
import { catchAllTenant } from './raw-connections.js';

/** A test gateway speaking HTTP/2 on both its listeners, and the origin of its one tenant. */
export interface Http2Listeners {
  readonly gateway: TestGateway;
  readonly origin: TestOrigin;
  /** The plain listener (h2c, beside HTTP/1.1). */
  readonly plainPort: number;
  /** The TLS listener (h2 by ALPN), with the default certificate for `*.localhost`. */
  readonly tlsPort: number;
  close(): Promise<void>;
}

/**
 * The gateway (GATEWAY_H2C on, a TLS listener, then `env`) whose tenant `<name>.localhost` sends every
 * request to a test origin.
 */
export async function startHttp2Listeners(
  name: string,
  env: Record<string, string> = {},
): Promise<Http2Listeners> {
  let certificates: DefaultCertificateFiles | undefined;
  let origin: TestOrigin | undefined;
  try {
    certificates = await writeDefaultCertificateFiles(name);
    origin = await startTestOrigin(`${name}-origin`);
    const gateway = await startTestGateway({ GATEWAY_H2C: 'true', ...certificates.tlsListenerEnv, ...env });
    gateway.store.apply(catchAllTenant(name, origin.url));
    const files = certificates;
    const served = origin;
    return {
      gateway,
      origin,
      plainPort: gateway.gateway.trafficPort,
      tlsPort: gateway.gateway.tlsPort as number,
      async close() {
        await gateway.close();
        await served.close();
        await files.remove();
      },
    };
  } catch (error) {
    await origin?.close();
    await certificates?.remove();
    throw error;
  }
}
