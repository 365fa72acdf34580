import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { type KeyUsage, keyUsagesOf } from './key-usage.js';

/**
 * Checks an uploaded TLS certificate: a PEM chain (leaf first, then its intermediates) and the leaf's
 * PEM private key. Everything with node:crypto's X509Certificate; no network (the chain is checked
 * link by link, not against a root store: tenants may use a private CA).
 */

export const MAX_CHAIN_CERTIFICATES = 10;
const PEM_BEGIN = '-----BEGIN CERTIFICATE-----';
const PEM_END = '-----END CERTIFICATE-----';
const MIN_RSA_BITS = 2048;
/**
 * Larger RSA keys cost far more per handshake (16384 bits: ~400 ms of CPU against ~4 ms for 2048), and
 * a replica does every tenant's handshakes on one thread: one tenant's key would stall the others.
 */
export const MAX_RSA_BITS = 4096;
const ACCEPTED_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);
/**
 * Keys the chain's signatures are checked with (on the control plane's one thread, at every upload):
 * cost grows with an RSA key's size and public exponent, so both are bounded far above real CAs' (up to
 * 4096 bits, exponent 65537). A 3072-bit exponent made one check ~10 ms, a chain of ten ~75 ms.
 */
const MAX_CHAIN_RSA_BITS = 8192;
const MAX_RSA_EXPONENT = 2n ** 32n;

export interface CertificateFacts {
  subject: string;
  issuer: string;
  serial_number: string;
  /** SHA-256 of the leaf's DER, colon-separated hex (as browsers show it). */
  fingerprint_sha256: string;
  not_before: string;
  not_after: string;
  /** The leaf's DNS subject alternative names (wildcards included as written). */
  dns_names: string[];
  /** Certificates in the chain, leaf included. */
  chain_length: number;
  key_type: string;
}

export interface BundleIssue {
  field: 'certificate' | 'private_key';
  issue: string;
}

export type BundleCheck =
  | {
      ok: true;
      facts: CertificateFacts;
      leaf: X509Certificate;
      /** The chain re-encoded as PEM blocks (leaf first), nothing else kept from the upload. */
      certificatePem: string;
      /** The key as unencrypted PKCS#8 PEM. */
      privateKeyPem: string;
    }
  | { ok: false; issues: BundleIssue[] };

/**
 * The PEM certificate blocks, in order, found block by block in one pass over the text. (A regex from
 * each BEGIN line to its END line searched the rest of the text again from every BEGIN line: 32 KiB of
 * BEGIN lines without an END held the control plane's one thread for over 100 ms.)
 */
function pemCertificateBlocks(pem: string): string[] | BundleIssue {
  const blocks: string[] = [];
  let from = 0;
  for (let begin = pem.indexOf(PEM_BEGIN); begin >= 0; begin = pem.indexOf(PEM_BEGIN, from)) {
    const end = pem.indexOf(PEM_END, begin + PEM_BEGIN.length);
    if (end < 0) {
      return {
        field: 'certificate',
        issue: `certificate ${blocks.length + 1} of the chain has no END CERTIFICATE line`,
      };
    }
    from = end + PEM_END.length;
    blocks.push(pem.slice(begin, from));
    if (blocks.length > MAX_CHAIN_CERTIFICATES) {
      return { field: 'certificate', issue: `has more than ${MAX_CHAIN_CERTIFICATES} certificates` };
    }
  }
  if (blocks.length === 0) return { field: 'certificate', issue: 'contains no PEM certificate block' };
  return blocks;
}

/** The certificates of a PEM text checked before (an origin's stored tls.ca_certificates), in order. */
export function certificatesOfPem(pem: string): X509Certificate[] {
  const blocks = pemCertificateBlocks(pem);
  return Array.isArray(blocks) ? blocks.map((block) => new X509Certificate(block)) : [];
}

function parseChain(pem: string): X509Certificate[] | BundleIssue {
  const blocks = pemCertificateBlocks(pem);
  if (!Array.isArray(blocks)) return blocks;
  const chain: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      chain.push(new X509Certificate(block));
    } catch {
      return { field: 'certificate', issue: `certificate ${index + 1} of the chain does not parse` };
    }
  }
  return chain;
}

/** Why a PEM private key is not accepted for TLS, or undefined (gateways check stored keys again). */
export function privateKeyIssue(pem: string): string | undefined {
  const key = parseKey(pem);
  return 'issue' in key ? key.issue : undefined;
}

function parseKey(pem: string): KeyObject | BundleIssue {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    return {
      field: 'private_key',
      issue: 'is not a PEM private key (an encrypted key must be decrypted before upload)',
    };
  }
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS)
      return { field: 'private_key', issue: `RSA keys need at least ${MIN_RSA_BITS} bits` };
    if (bits > MAX_RSA_BITS)
      return { field: 'private_key', issue: `RSA keys may have at most ${MAX_RSA_BITS} bits` };
  } else if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
    if (!ACCEPTED_CURVES.has(curve))
      return { field: 'private_key', issue: `EC curve ${curve} is not accepted` };
  } else {
    return { field: 'private_key', issue: `key type ${type ?? 'unknown'} is not accepted (RSA or EC)` };
  }
  return key;
}

/** Why a certificate's public key is not accepted in a chain (too costly to check signatures with). */
function chainKeyIssue(certificate: X509Certificate): string | undefined {
  let key: KeyObject;
  try {
    key = certificate.publicKey;
  } catch {
    return 'has a public key of an unsupported type (RSA or EC expected)';
  }
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') {
    if ((details?.modulusLength ?? 0) > MAX_CHAIN_RSA_BITS) {
      return `has an RSA key over ${MAX_CHAIN_RSA_BITS} bits`;
    }
    if ((details?.publicExponent ?? 0n) > MAX_RSA_EXPONENT) {
      return 'has an RSA public exponent over 32 bits (real keys use 65537)';
    }
    return undefined;
  }
  if (key.asymmetricKeyType === 'ec') {
    return ACCEPTED_CURVES.has(details?.namedCurve ?? '')
      ? undefined
      : 'has an EC key on a curve other than P-256, P-384 and P-521';
  }
  return `has a ${key.asymmetricKeyType ?? 'unknown'} key (RSA or EC expected)`;
}

/**
 * The DNS names of a certificate's subjectAltName, e.g. ["api.example.com", "*.example.com"]; none for
 * an extension node cannot format (an empty one throws "Failed to format subject alternative name").
 */
export function dnsNamesOf(certificate: X509Certificate): string[] {
  let subjectAltName: string | undefined;
  try {
    subjectAltName = certificate.subjectAltName;
  } catch {
    return [];
  }
  const names: string[] = [];
  for (const entry of (subjectAltName ?? '').split(/,\s*/)) {
    const match = /^DNS:"?([^"]+)"?$/.exec(entry.trim());
    if (match?.[1]) names.push(match[1].toLowerCase());
  }
  return names;
}

/** Whether the leaf's subjectAltName covers `hostname` (one-label wildcards, no subject CN fallback). */
export function certificateCovers(certificate: X509Certificate, hostname: string): boolean {
  return (
    certificate.checkHost(hostname, { subject: 'never', wildcards: true, partialWildcards: false }) !==
    undefined
  );
}

/**
 * Parses and checks the chain and key: every block parses, each certificate's key is RSA (≤ 8192 bits,
 * exponent ≤ 2^32) or EC P-256/384/521, each certificate is issued and signed by the next one, none is
 * expired or not yet valid at `now`, the leaf is not a CA, the key is RSA ≥ 2048 bits or EC
 * P-256/384/521 and is the leaf's, the leaf has a DNS name and its usages allow a TLS server's (unless
 * `servedForHosts` is false). Reports every problem found, by field.
 */
export function checkCertificateBundle(input: {
  certificatePem: string;
  privateKeyPem: string;
  now: Date;
  /** false: a certificate served for no host name (a client certificate): it may have no DNS name, and any usage. */
  servedForHosts?: boolean;
}): BundleCheck {
  const issues: BundleIssue[] = [];
  const chain = parseChain(input.certificatePem);
  const key = parseKey(input.privateKeyPem);
  if (!Array.isArray(chain)) issues.push(chain);
  if (!('type' in key)) issues.push(key);
  if (!Array.isArray(chain) || !('type' in key)) return { ok: false, issues };

  const leaf = chain[0] as X509Certificate;
  const now = input.now.getTime();
  for (const [index, certificate] of chain.entries()) {
    const which = index === 0 ? 'the certificate' : `chain certificate ${index + 1}`;
    const validity = validityOf(certificate);
    if (validity === undefined) {
      issues.push({ field: 'certificate', issue: `${which} ${UNREADABLE_VALIDITY}` });
    } else {
      if (validity.notAfterMs <= now)
        issues.push({ field: 'certificate', issue: `${which} expired on ${isoDate(validity.notAfterMs)}` });
      if (validity.notBeforeMs > now)
        issues.push({
          field: 'certificate',
          issue: `${which} is not valid before ${isoDate(validity.notBeforeMs)}`,
        });
    }
    const keyIssue = chainKeyIssue(certificate);
    if (keyIssue !== undefined) issues.push({ field: 'certificate', issue: `${which} ${keyIssue}` });
    const issuer = chain[index + 1];
    // A costly issuer key is reported (at its own index) and never used to verify.
    if (issuer === undefined || chainKeyIssue(issuer) !== undefined) continue;
    if (!(certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey))) {
      issues.push({
        field: 'certificate',
        issue: `${which} is not issued by the next certificate in the chain (order: leaf first, then intermediates)`,
      });
    }
  }
  if (leaf.ca)
    issues.push({ field: 'certificate', issue: 'the first certificate is a CA certificate, not a leaf' });
  if (!leaf.checkPrivateKey(key)) {
    issues.push({ field: 'private_key', issue: "does not match the certificate's public key" });
  }
  const dnsNames = dnsNamesOf(leaf);
  if (input.servedForHosts !== false) {
    if (dnsNames.length === 0)
      issues.push({ field: 'certificate', issue: 'has no DNS subject alternative name' });
    const usageIssue = serverAuthenticationIssue(chain);
    if (usageIssue !== undefined) issues.push({ field: 'certificate', issue: usageIssue });
  }
  if (issues.length > 0) return { ok: false, issues };

  return {
    ok: true,
    leaf,
    certificatePem: chain.map((certificate) => certificate.toString()).join(''),
    privateKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    facts: {
      subject: leaf.subject,
      issuer: leaf.issuer,
      serial_number: leaf.serialNumber,
      fingerprint_sha256: leaf.fingerprint256,
      // Read above: a leaf whose validity does not parse is an issue.
      not_before: isoDate(validityOf(leaf)!.notBeforeMs),
      not_after: isoDate(validityOf(leaf)!.notAfterMs),
      dns_names: dnsNames,
      chain_length: chain.length,
      key_type:
        key.asymmetricKeyType === 'ec'
          ? `EC ${key.asymmetricKeyDetails?.namedCurve}`
          : `RSA ${key.asymmetricKeyDetails?.modulusLength}`,
    },
  };
}

/**
 * Why a PEM text is not a set of CA certificates an origin's connections may trust (an origin's
 * tls.ca_certificates), or undefined: only certificate blocks (at most MAX_CHAIN_CERTIFICATES), each
 * parsing, a CA (basic constraints), valid at `now`, with a key that is not costly to check signatures with.
 */
export function caCertificatesIssue(pem: string, now: Date): string | undefined {
  if (pem.includes('PRIVATE KEY-----')) return 'must hold CA certificates only: it contains a private key';
  const blocks = pemCertificateBlocks(pem);
  if (!Array.isArray(blocks)) return blocks.issue.replace(' of the chain', '');
  const outside = blocks.reduce((text, block) => text.replace(block, ''), pem);
  if (outside.trim() !== '') return 'must hold PEM certificate blocks only, nothing between them';
  for (const [index, block] of blocks.entries()) {
    const which = `certificate ${index + 1}`;
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(block);
    } catch {
      return `${which} does not parse`;
    }
    if (!certificate.ca)
      return `${which} (${certificate.subject.replace(/\n/g, ', ')}) is not a CA certificate`;
    const validity = validityOf(certificate);
    if (validity === undefined) return `${which} ${UNREADABLE_VALIDITY}`;
    if (validity.notAfterMs <= now.getTime()) return `${which} expired on ${isoDate(validity.notAfterMs)}`;
    const keyIssue = chainKeyIssue(certificate);
    if (keyIssue !== undefined) return `${which} ${keyIssue}`;
  }
  return undefined;
}

/** The extended key usage of a TLS server certificate (RFC 5280 4.2.1.12). */
const SERVER_AUTH_USAGE = '1.3.6.1.5.5.7.3.1';

/**
 * Why clients refuse a chain (leaf first) as a TLS server's, or undefined: serverExtendedUsageIssue,
 * and a leaf with a key usage extension must allow signing: the gateway signs every handshake (TLS 1.3
 * and ECDHE suites only; keyEncipherment served static-RSA suites), and BoringSSL (Chrome, Android)
 * checks it.
 */
export function serverAuthenticationIssue(chain: readonly X509Certificate[]): string | undefined {
  const extendedUsageIssue = serverExtendedUsageIssue(chain);
  if (extendedUsageIssue !== undefined) return extendedUsageIssue;
  const [leaf] = chain;
  if (leaf !== undefined && keyUsagesOf(leaf)?.has('digitalSignature') === false)
    return 'its key usage does not allow signing (digitalSignature), which the gateway does at every handshake';
  return undefined;
}

/**
 * Why every verifying client refuses a chain (leaf first) as a TLS server's, OpenSSL's included, or
 * undefined: a certificate with an extended key usage that does not list server authentication.
 * OpenSSL refuses every other one, anyExtendedKeyUsage included ("unsuitable certificate purpose"),
 * and checks every certificate of the chain, the CAs' included (a root too, since OpenSSL 3): a CA
 * limited to client certificates vouches for no server. (A key usage without digitalSignature only some
 * clients enforce; serverAuthenticationIssue refuses both.)
 */
export function serverExtendedUsageIssue(chain: readonly X509Certificate[]): string | undefined {
  for (const [index, certificate] of chain.entries()) {
    const extendedUsages = certificate.keyUsage;
    if (extendedUsages === undefined || extendedUsages.includes(SERVER_AUTH_USAGE)) continue;
    return index === 0
      ? 'its extended key usage does not allow server authentication (TLS Web Server Authentication): clients refuse it'
      : `chain certificate ${index + 1} has an extended key usage that does not allow server authentication (TLS Web Server Authentication): clients refuse the certificates it issues`;
  }
  return undefined;
}

/** Extended key usages that allow a certificate to authenticate a TLS client (RFC 5280 4.2.1.12). */
const CLIENT_AUTH_USAGES = new Set(['1.3.6.1.5.5.7.3.2', '2.5.29.37.0']);

/**
 * Key usages that let a client certificate's key take part in a handshake: it signs the handshake
 * (digitalSignature), or, by OpenSSL's and BoringSSL's purpose check, which origins run, keyAgreement.
 */
const CLIENT_HANDSHAKE_KEY_USAGES: readonly KeyUsage[] = ['digitalSignature', 'keyAgreement'];

/**
 * Why a certificate (PEM, leaf first) cannot authenticate the gateways to an origin (an origin's
 * tls.client_certificate_id), or undefined. A certificate without an extended key usage may serve any
 * purpose; one with it must list client authentication (or any usage). A certificate without a key usage
 * extension may be used for anything; one with it must allow signing (or key agreement). Otherwise a
 * verifying origin refuses it at every handshake.
 */
export function clientAuthenticationIssue(certificatePem: string): string | undefined {
  const certificate = new X509Certificate(certificatePem);
  const extendedUsages = certificate.keyUsage;
  if (extendedUsages !== undefined && !extendedUsages.some((usage) => CLIENT_AUTH_USAGES.has(usage)))
    return 'its extended key usage does not allow client authentication (TLS Web Client Authentication)';
  const usages = keyUsagesOf(certificate);
  if (usages !== undefined && !CLIENT_HANDSHAKE_KEY_USAGES.some((usage) => usages.has(usage)))
    return 'its key usage does not allow signing (digitalSignature), which a TLS client does with its key';
  return undefined;
}

/**
 * A certificate's validity period in ms since the epoch; undefined when a date does not parse: node
 * parses a certificate whose notBefore or notAfter is malformed (month 13) and reads such a date as
 * "Bad time value" — no instant, so neither expired nor valid (OpenSSL refuses it in a handshake).
 */
function validityOf(certificate: X509Certificate): { notBeforeMs: number; notAfterMs: number } | undefined {
  const notBeforeMs = certificate.validFromDate.getTime();
  const notAfterMs = certificate.validToDate.getTime();
  return Number.isNaN(notBeforeMs) || Number.isNaN(notAfterMs) ? undefined : { notBeforeMs, notAfterMs };
}

const UNREADABLE_VALIDITY = 'has a validity period (notBefore, notAfter) that does not parse';

function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}
