import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';

/**
 * The gateway's TLS settings for every certificate it serves: TLS 1.2 and 1.3 only, and for TLS 1.2
 * only forward-secret AEAD suites (Mozilla's "intermediate" list; TLS 1.3 suites are OpenSSL's
 * defaults, all of them modern).
 */
export const TLS_POLICY: Readonly<SecureContextOptions> = {
  minVersion: 'TLSv1.2',
  ciphers: [
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
  ecdhCurve: 'X25519:P-256:P-384',
};

/** A SecureContext for one certificate chain and its key, under the gateway's TLS policy. */
export function secureContextFor(certificatePem: string, privateKeyPem: string): SecureContext {
  return createSecureContext({ ...TLS_POLICY, cert: certificatePem, key: privateKeyPem });
}
