import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

/**
 * What one signature check with a public key costs the replica's thread, in milliseconds, as measured
 * with node 24 (OpenSSL 3.5) on a loaded 2-core machine. An RSA check is a modular exponentiation by the
 * public exponent: its cost grows with the exponent's length and the square of the modulus's. OpenSSL
 * accepts any exponent up to 3,072-bit moduli (≈ 13 ms each, 65537 ≈ 0.1 ms) and moduli up to 16,384 bits
 * with exponents up to 64 bits (≈ 8 ms); DSA groups of up to 10,000 bits.
 */
const RSA_MS_PER_EXPONENT_BIT_AT_3072 = 0.0044;
const FIXED_MS = 0.05;
const EC_MS: Readonly<Record<string, number>> = { prime256v1: 0.15, secp384r1: 1.3, secp521r1: 2.2 };
const OTHER_CURVE_MS = 2.5;
const EDWARDS_MS: Readonly<Record<string, number>> = { ed25519: 0.2, ed448: 0.45 };
/** A key of a type not listed: as dear as OpenSSL's dearest RSA check. */
const UNKNOWN_KEY_MS = 15;

/** The estimated cost of one signature check with `certificate`'s public key. */
export function signatureCheckMs(certificate: X509Certificate): number {
  const key = certificate.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss': {
      const scale = ((details.modulusLength ?? 16_384) / 3072) ** 2;
      const exponentBits =
        details.publicExponent === undefined ? 3072 : details.publicExponent.toString(2).length;
      return FIXED_MS + RSA_MS_PER_EXPONENT_BIT_AT_3072 * exponentBits * scale;
    }
    case 'dsa': {
      // Two exponentiations by numbers as long as the subgroup order, modulo the group's prime.
      const scale = ((details.modulusLength ?? 10_000) / 3072) ** 2;
      return FIXED_MS + RSA_MS_PER_EXPONENT_BIT_AT_3072 * 3 * (details.divisorLength ?? 256) * scale;
    }
    case 'ec':
      return EC_MS[details.namedCurve ?? ''] ?? OTHER_CURVE_MS;
    default:
      return EDWARDS_MS[key.asymmetricKeyType ?? ''] ?? UNKNOWN_KEY_MS;
  }
}

/**
 * The estimated cost, in milliseconds of the replica's thread, of the certificate checks of `socket`'s
 * handshake: OpenSSL checks the signature of each certificate of the chain it builds from what the origin
 * sent (trusted or not, `verify: false` included) with its issuer's key, and the handshake's own signature
 * with the leaf's key. Counted on the chain node reports (the same issuer-by-name building, up to a trust
 * anchor of the store or the top of what was sent), a self-signed top included. 0 for a resumed session
 * (no certificate is checked) or before the origin sent its certificate.
 */
export function handshakeCheckMs(socket: TLSSocket): number {
  if (socket.isSessionReused()) return 0;
  let peer: DetailedPeerCertificate | undefined;
  try {
    peer = socket.getPeerCertificate(true) as DetailedPeerCertificate | undefined;
  } catch {
    return 0;
  }
  if (peer?.raw === undefined) return 0;
  let total = 0;
  const seen = new Set<string>();
  let current: DetailedPeerCertificate | undefined = peer;
  let key = signatureCheckMs(new X509Certificate(peer.raw));
  total += key; // the handshake's signature (CertificateVerify, ServerKeyExchange)
  while (current !== undefined && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    const issuer: DetailedPeerCertificate | undefined = current.issuerCertificate;
    if (issuer?.raw === undefined) break;
    key =
      issuer.fingerprint256 === current.fingerprint256
        ? key
        : signatureCheckMs(new X509Certificate(issuer.raw));
    total += key;
    current = issuer;
  }
  return total;
}
