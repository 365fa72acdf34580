import 'reflect-metadata';
import { KeyObject, webcrypto } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';

/**
 * The development-only TLS certificate `make dev` serves on GATEWAY_TLS_PORT when no certificate files
 * are configured: self-signed for localhost, *.localhost and *.vantageedge.dev, generated once into
 * `.data/dev/tls/` (so `curl -k https://demo.localhost:8443/...` works, and a browser exception stays
 * valid across restarts).
 */

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const VALID_DAYS = 825;

export interface DevCertificateFiles {
  certFile: string;
  keyFile: string;
  /** True when this call generated them. */
  created: boolean;
}

export async function loadOrCreateDevCertificate(repoDataDir: string): Promise<DevCertificateFiles> {
  const folder = path.join(repoDataDir, 'dev', 'tls');
  const certFile = path.join(folder, 'dev-cert.pem');
  const keyFile = path.join(folder, 'dev-key.pem');
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile, created: false };
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=VantageEdge make dev (development only)',
    keys,
    notBefore: new Date(Date.now() - 3600 * 1000),
    notAfter: new Date(Date.now() + VALID_DAYS * 24 * 3600 * 1000),
    signingAlgorithm: EC_P256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.1']),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' },
        { type: 'dns', value: '*.localhost' },
        { type: 'dns', value: 'vantageedge.dev' },
        { type: 'dns', value: '*.vantageedge.dev' },
        { type: 'ip', value: '127.0.0.1' },
      ]),
    ],
  });
  const privateKeyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  mkdirSync(folder, { recursive: true });
  writeFileSync(keyFile, privateKeyPem, { mode: 0o600 });
  writeFileSync(certFile, certificate.toString('pem'));
  return { certFile, keyFile, created: true };
}
