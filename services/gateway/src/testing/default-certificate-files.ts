import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';

export interface DefaultCertificateFiles {
  /** The settings that open the TLS listener (on a port of its own) with this default certificate. */
  readonly tlsListenerEnv: {
    GATEWAY_TLS_PORT: string;
    GATEWAY_TLS_CERT_FILE: string;
    GATEWAY_TLS_KEY_FILE: string;
  };
  remove(): Promise<void>;
}

/**
 * The platform's default certificate (self-signed, for `*.localhost` and `localhost`) and its key, written
 * to a temporary directory of their own as an operator's GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE.
 */
export async function writeDefaultCertificateFiles(name: string): Promise<DefaultCertificateFiles> {
  const certificate = await selfSignedTestCertificate({ dnsNames: ['*.localhost', 'localhost'] });
  const dir = await mkdtemp(path.join(tmpdir(), `gateway-${name}-`));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  await writeFile(certFile, certificate.chainPem);
  await writeFile(keyFile, certificate.privateKeyPem);
  return {
    tlsListenerEnv: { GATEWAY_TLS_PORT: '0', GATEWAY_TLS_CERT_FILE: certFile, GATEWAY_TLS_KEY_FILE: keyFile },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
