import type { TLSSocket } from 'node:tls';

/** The key types of the certificates the gateway serves (uploads accept RSA and EC keys only). */
export type CertificateKeyType = 'rsa' | 'ec';

/**
 * The certificate key types a client can verify a handshake signature of, from the signature algorithms
 * it shares with the gateway (node names them `ECDSA+SHA256`, `RSA-PSS+SHA256`, `RSA+SHA256`, …).
 * Undefined when the client named none (a TLS 1.2 client may leave the extension out): nothing is known.
 */
export function keyTypesAccepted(
  sharedSigalgs: readonly string[],
): ReadonlySet<CertificateKeyType> | undefined {
  const accepted = new Set<CertificateKeyType>();
  for (const sigalg of sharedSigalgs) {
    const signature = sigalg.slice(0, sigalg.indexOf('+'));
    if (signature === 'ECDSA') accepted.add('ec');
    else if (signature === 'RSA' || signature === 'RSA-PSS') accepted.add('rsa');
  }
  return sharedSigalgs.length === 0 ? undefined : accepted;
}

/**
 * What `socket`'s client accepts. Node knows the client's signature algorithms once the ClientHello is
 * read, so from the SNI callback on (the handshake's cipher suites it does not expose).
 */
export function clientKeyTypes(socket: TLSSocket): ReadonlySet<CertificateKeyType> | undefined {
  try {
    return keyTypesAccepted(socket.getSharedSigalgs());
  } catch {
    return undefined;
  }
}
