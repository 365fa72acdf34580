import 'reflect-metadata';
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  KeyObject,
  randomBytes,
  webcrypto,
  X509Certificate,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as x509 from '@peculiar/x509';

export { KeyUsageFlags } from '@peculiar/x509';

/**
 * X.509 certificates made in the test process (node:crypto cannot sign certificates itself): a
 * private CA and leaf certificates it issues, with the SANs, validity and key a test asks for.
 */

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKeyPair = webcrypto.CryptoKeyPair;

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const RSA_2048 = {
  name: 'RSASSA-PKCS1-v1_5',
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: 'SHA-256',
} as const;
const DAY_MS = 24 * 3600 * 1000;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

export interface TestKeyPair {
  keys: CryptoKeyPair;
  privateKeyPem: string;
}

export interface TestCa extends TestKeyPair {
  subject: string;
  certificatePem: string;
}

export interface TestCertificate extends TestKeyPair {
  /** The leaf alone. */
  certificatePem: string;
  /** Leaf then the issuing CA (what a server presents and what an upload carries). */
  chainPem: string;
  /** SHA-256 fingerprint as node's X509Certificate.fingerprint256 prints it. */
  fingerprint256: string;
}

/** A new key pair: EC P-256, or RSA of `rsaBits` with the exponent 65537. */
export async function generateKeys(type: 'ec' | 'rsa' = 'ec', rsaBits = 2048): Promise<TestKeyPair> {
  const algorithm = type === 'ec' ? EC_P256 : { ...RSA_2048, modulusLength: rsaBits };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const privateKeyPem = KeyObject.from(keys.privateKey as webcrypto.CryptoKey)
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
  return { keys, privateKeyPem };
}

function algorithmOf(keys: CryptoKeyPair) {
  return keys.privateKey.algorithm.name === 'ECDSA' ? EC_P256 : RSA_2048;
}

export interface CaOptions {
  /** The CA's key pair (default: a new EC P-256 pair). */
  keyPair?: TestKeyPair;
  /** The CA that signs this one (an intermediate); default: self-signed (a root). */
  issuer?: TestCa;
  /** Validity (default: from a day ago for ten years). */
  notBefore?: Date;
  notAfter?: Date;
  /**
   * A CA certificate whose subject key identifier this one claims as its own (default: its own key's):
   * a decoy that certificates issued by that CA name as their issuer, as OpenSSL and node match them.
   */
  keyIdentifierOf?: string | undefined;
  /** Its key usage (default: keyCertSign and cRLSign). */
  keyUsages?: number | undefined;
  /** Extended key usage OIDs (default: none, no such extension). */
  extendedKeyUsages?: readonly string[];
}

export async function createTestCa(name = 'VantageEdge Test CA', options: CaOptions = {}): Promise<TestCa> {
  const pair = options.keyPair ?? (await generateKeys());
  const subject = `CN=${name}`;
  const { issuer } = options;
  const signer = issuer?.keys ?? pair.keys;
  const certificate = await x509.X509CertificateGenerator.create({
    subject,
    issuer: issuer?.subject ?? subject,
    publicKey: pair.keys.publicKey,
    signingKey: signer.privateKey,
    notBefore: options.notBefore ?? new Date(Date.now() - DAY_MS),
    notAfter: options.notAfter ?? new Date(Date.now() + 3650 * DAY_MS),
    signingAlgorithm: algorithmOf(signer),
    extensions: [
      new x509.BasicConstraintsExtension(true, issuer ? 0 : 1, true),
      new x509.KeyUsagesExtension(
        options.keyUsages ?? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      options.keyIdentifierOf === undefined
        ? await x509.SubjectKeyIdentifierExtension.create(pair.keys.publicKey)
        : new x509.SubjectKeyIdentifierExtension(subjectKeyIdOf(options.keyIdentifierOf)),
      ...(issuer ? [await x509.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey)] : []),
      ...extendedKeyUsageOf({ extendedKeyUsages: options.extendedKeyUsages ?? [] }),
    ],
  });
  return { ...pair, subject, certificatePem: certificate.toString('pem') };
}

function subjectKeyIdOf(certificatePem: string): string {
  const extension = new x509.X509Certificate(certificatePem).getExtension(x509.SubjectKeyIdentifierExtension);
  if (extension === null) throw new Error('the certificate has no subject key identifier');
  return extension.keyId;
}

const toBigInt = (base64url: string) => BigInt(`0x${Buffer.from(base64url, 'base64url').toString('hex')}`);
const toBase64url = (value: bigint) => {
  const hex = value.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex').toString('base64url');
};
const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));
function modInverse(a: bigint, modulus: bigint): bigint {
  let [r0, r1, s0, s1] = [a % modulus, modulus, 1n, 0n];
  while (r1 !== 0n) {
    const quotient = r0 / r1;
    [r0, r1] = [r1, r0 - quotient * r1];
    [s0, s1] = [s1, s0 - quotient * s1];
  }
  return ((s0 % modulus) + modulus) % modulus;
}

/**
 * An RSA key pair whose public exponent is almost as long as its modulus (real keys use 65537): every
 * signature check with it costs a full-length modular exponentiation, as much as signing without CRT.
 */
export async function rsaKeysWithHugeExponent(modulusBits = 3072): Promise<TestKeyPair> {
  const jwk = generateKeyPairSync('rsa', { modulusLength: modulusBits }).privateKey.export({
    format: 'jwk',
  });
  const p = toBigInt(jwk.p as string);
  const q = toBigInt(jwk.q as string);
  const phi = (p - 1n) * (q - 1n);
  let e: bigint;
  do e = toBigInt(randomBytes(modulusBits / 8 - 1).toString('base64url')) | 1n;
  while (gcd(e, phi) !== 1n);
  const d = modInverse(e, phi);
  const numbers = { kty: 'RSA', n: jwk.n as string, e: toBase64url(e), ext: true };
  const privateJwk = {
    ...numbers,
    d: toBase64url(d),
    p: jwk.p as string,
    q: jwk.q as string,
    dp: toBase64url(d % (p - 1n)),
    dq: toBase64url(d % (q - 1n)),
    qi: toBase64url(modInverse(q, p)),
  };
  const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const keys = {
    privateKey: await webcrypto.subtle.importKey('jwk', privateJwk, algorithm, true, ['sign']),
    publicKey: await webcrypto.subtle.importKey('jwk', numbers, algorithm, true, ['verify']),
  } as CryptoKeyPair;
  const privateKeyPem = KeyObject.from(keys.privateKey as webcrypto.CryptoKey)
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
  return { keys, privateKeyPem };
}

export interface LeafOptions {
  /** DNS subject alternative names (wildcards allowed). */
  dnsNames: readonly string[];
  /** IP subject alternative names. */
  ipAddresses?: readonly string[];
  commonName?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** Days of validity from now when notAfter is not given (default 90). */
  validDays?: number;
  keyType?: 'ec' | 'rsa';
  /** The RSA key's size (keyType 'rsa'; default 2048). */
  rsaBits?: number;
  /** Reuse a key pair (e.g. a renewed certificate for the same key). */
  keyPair?: TestKeyPair;
  /** Extended key usage OIDs (default: server authentication only); empty: no such extension. */
  extendedKeyUsages?: readonly string[];
  /** Key usage bits (x509.KeyUsageFlags; default: digitalSignature and keyEncipherment); 0: no such extension. */
  keyUsages?: number;
}

export const CLIENT_AUTH_USAGE = '1.3.6.1.5.5.7.3.2';

export async function issueTestCertificate(ca: TestCa, options: LeafOptions): Promise<TestCertificate> {
  const pair = options.keyPair ?? (await generateKeys(options.keyType, options.rsaBits));
  const notBefore = options.notBefore ?? new Date(Date.now() - 3600 * 1000);
  const notAfter = options.notAfter ?? new Date(Date.now() + (options.validDays ?? 90) * DAY_MS);
  const names = [
    ...options.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const certificate = await x509.X509CertificateGenerator.create({
    subject: `CN=${options.commonName ?? options.dnsNames[0] ?? 'test'}`,
    issuer: ca.subject,
    publicKey: pair.keys.publicKey,
    signingKey: ca.keys.privateKey,
    notBefore,
    notAfter,
    signingAlgorithm: algorithmOf(ca.keys),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      ...keyUsageOf(options),
      ...extendedKeyUsageOf(options),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
  const certificatePem = certificate.toString('pem');
  return {
    ...pair,
    certificatePem,
    chainPem: `${certificatePem}\n${ca.certificatePem}\n`,
    fingerprint256: new X509Certificate(certificatePem).fingerprint256,
  };
}

function keyUsageOf(options: LeafOptions): x509.Extension[] {
  const usages =
    options.keyUsages ?? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment;
  return usages === 0 ? [] : [new x509.KeyUsagesExtension(usages, true)];
}

function extendedKeyUsageOf(options: Pick<LeafOptions, 'extendedKeyUsages'>): x509.Extension[] {
  const usages = options.extendedKeyUsages ?? [SERVER_AUTH];
  return usages.length === 0 ? [] : [new x509.ExtendedKeyUsageExtension([...usages])];
}

/** A self-signed leaf (no CA), as a developer's local certificate would be. */
export async function selfSignedTestCertificate(options: LeafOptions): Promise<TestCertificate> {
  const pair = options.keyPair ?? (await generateKeys(options.keyType, options.rsaBits));
  const notAfter = options.notAfter ?? new Date(Date.now() + (options.validDays ?? 90) * DAY_MS);
  const names = [
    ...options.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${options.commonName ?? options.dnsNames[0] ?? 'test'}`,
    keys: pair.keys,
    notBefore: options.notBefore ?? new Date(Date.now() - 3600 * 1000),
    notAfter,
    signingAlgorithm: algorithmOf(pair.keys),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([SERVER_AUTH]),
      new x509.SubjectAlternativeNameExtension(names),
    ],
  });
  const certificatePem = certificate.toString('pem');
  return {
    ...pair,
    certificatePem,
    chainPem: certificatePem,
    fingerprint256: new X509Certificate(certificatePem).fingerprint256,
  };
}

/**
 * An RSA-8192 key pair for tests of the modulus bound, read from a fixture: generating one takes 8–20 s
 * on a busy machine. A test key only, never trusted anywhere.
 */
export function rsa8192TestKeys(): { privateKey: KeyObject; publicKey: KeyObject } {
  const pem = readFileSync(new URL('./fixtures/rsa-8192-test-key.pem', import.meta.url), 'utf8');
  const privateKey = createPrivateKey(pem);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** The RSA-8192 fixture (rsa8192TestKeys) as a key pair a test certificate can be issued for. */
export async function rsa8192TestKeyPair(): Promise<TestKeyPair> {
  const { privateKey, publicKey } = rsa8192TestKeys();
  const algorithm = { name: RSA_2048.name, hash: RSA_2048.hash };
  const keys = {
    privateKey: await webcrypto.subtle.importKey(
      'pkcs8',
      privateKey.export({ type: 'pkcs8', format: 'der' }),
      algorithm,
      true,
      ['sign'],
    ),
    publicKey: await webcrypto.subtle.importKey(
      'spki',
      publicKey.export({ type: 'spki', format: 'der' }),
      algorithm,
      true,
      ['verify'],
    ),
  } as CryptoKeyPair;
  return { keys, privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}
