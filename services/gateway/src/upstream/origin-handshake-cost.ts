import { type KeyObject, X509Certificate } from 'node:crypto';
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
/**
 * Any other curve: binary ones (sect571r1 ≈ 2.5 times secp521r1) up to OpenSSL's 661 bits, named or by
 * explicit parameters.
 */
const OTHER_CURVE_MS = 8;
const EDWARDS_MS: Readonly<Record<string, number>> = { ed25519: 0.2, ed448: 0.45 };
/** A key of a type not listed: as dear as OpenSSL's dearest RSA check. */
const UNKNOWN_KEY_MS = 15;
/**
 * The most a handshake's certificate checks can cost: OpenSSL builds chains of up to 100 CA certificates
 * above the leaf (its default depth), each checked with its issuer's key, the handshake's own signature
 * with the leaf's; every key as dear as the dearest.
 */
export const MAX_HANDSHAKE_CHECK_MS = (100 + 2) * UNKNOWN_KEY_MS;
/**
 * What a byte of certificates the origin sent and node does not report may cost to check, at most: a
 * certificate of a sect571r1 key is ≈ 400 bytes and costs ≈ 7 ms to check a signature with.
 */
const MS_PER_UNREPORTED_BYTE = 0.0175;
/**
 * What an origin sends before the handshake is over besides its certificates and the leaf's signature:
 * ServerHello, EncryptedExtensions or ServerKeyExchange's parameters, Finished, a TLS 1.2 session
 * ticket, the records' framing (≈ 100–250 bytes as node's own servers send them, a hybrid key share aside).
 */
const HANDSHAKE_FRAMING_BYTES = 512;
/** The length and extensions (TLS 1.3) of each certificate in the Certificate message. */
const BYTES_PER_CERTIFICATE = 8;

/** What the origin sent in the handshake, counted on the TCP connection under it. */
export interface ReceivedHandshake {
  readonly bytes: number;
  /** SHA-256 fingerprints of the trust store's certificates: node's chain may end with some not sent. */
  readonly trustStore: ReadonlySet<string>;
  /** What checking with each certificate of the origin's own trust store costs (OpenSSL looks there first). */
  readonly trustStoreCheckMs: number;
}

/** The estimated cost of one signature check with a certificate's public `key`. */
export function signatureCheckMs(key: KeyObject): number {
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
 * (no certificate is checked).
 *
 * Node's chain is not always OpenSSL's. Node takes, for each certificate, the first one sent of its
 * issuer's name that may sign certificates; OpenSSL passes over an expired (or not yet valid) one for a
 * valid one sent after it, and over none for its key usage: the certificates OpenSSL checked beyond
 * node's chain are among the bytes the origin sent and node's chain does not explain (`received`), which
 * are charged as certificates as dear to check as can be (an expired cross-signed intermediate, which
 * ordinary servers still send, is charged as its key, not as the most a handshake can cost); so is all that an origin sent in a handshake that failed before node saw a certificate.
 * OpenSSL looks for each issuer in the trust store first: an origin's own CAs may all be checked with,
 * whatever node's chain holds (`received.trustStoreCheckMs`).
 */
export function handshakeCheckMs(socket: TLSSocket, received?: ReceivedHandshake): number {
  if (socket.isSessionReused()) return 0;
  const chain = reportedChain(socket);
  let total = reportedChainCheckMs(chain);
  if (received !== undefined) {
    const explained =
      HANDSHAKE_FRAMING_BYTES +
      hybridKeyShareBytes(socket) +
      (chain[0] === undefined ? 0 : signatureBytes(chain[0].publicKey)) +
      chain
        .filter((certificate) => !received.trustStore.has(certificate.fingerprint256))
        .reduce((sum, certificate) => sum + certificate.raw.length + BYTES_PER_CERTIFICATE, 0);
    total += Math.max(0, received.bytes - explained) * MS_PER_UNREPORTED_BYTE + received.trustStoreCheckMs;
  }
  return Math.min(total, MAX_HANDSHAKE_CHECK_MS);
}

/** The chain node reports, leaf first, each certificate once; none before the origin sent its certificate. */
function reportedChain(socket: TLSSocket): X509Certificate[] {
  let peer: DetailedPeerCertificate | undefined;
  try {
    peer = socket.getPeerCertificate(true) as DetailedPeerCertificate | undefined;
  } catch {
    return [];
  }
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  for (let at = peer; at?.raw !== undefined && !seen.has(at.fingerprint256); at = at.issuerCertificate) {
    seen.add(at.fingerprint256);
    chain.push(new X509Certificate(at.raw));
  }
  return chain;
}

function reportedChainCheckMs(chain: readonly X509Certificate[]): number {
  const [leaf, ...issuers] = chain;
  if (leaf === undefined) return 0;
  let key = signatureCheckMs(leaf.publicKey);
  let total = key; // the handshake's signature (CertificateVerify, ServerKeyExchange)
  for (const issuer of issuers) {
    key = signatureCheckMs(issuer.publicKey);
    total += key;
  }
  // A self-signed top (node's chain ends with it as its own issuer) is checked with its own key.
  const top = chain.at(-1) as X509Certificate;
  if (top.checkIssued(top)) total += key;
  return total;
}

/** The server's share of a hybrid ML-KEM key exchange (TLS 1.3): its ciphertext, ≈ 1.1–1.6 kB. */
function hybridKeyShareBytes(socket: TLSSocket): number {
  let group: string | undefined;
  try {
    group = (socket.getEphemeralKeyInfo() as { name?: string } | null)?.name;
  } catch {
    return 0;
  }
  if (group === undefined || !group.includes('MLKEM')) return 0;
  return group.includes('1024') ? 1_700 : 1_200;
}

/** The length of a signature with `key` (the leaf's, over the handshake). */
function signatureBytes(key: KeyObject): number {
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      return Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 16_384) / 8);
    case 'ec':
    case 'dsa':
      return 160;
    case 'ed25519':
    case 'ed448':
      return 114;
    default:
      return 5_000;
  }
}
