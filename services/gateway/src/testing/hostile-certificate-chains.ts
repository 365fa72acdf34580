import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTestCa,
  generateKeys,
  issueTestCertificate,
  rsaKeysWithHugeExponent,
} from '@vantageedge/shared/testing/test-certificates';

/** A certificate chain an origin sends, leaf first, with the leaf's key. */
export interface HostileChain {
  readonly chainPem: string;
  readonly privateKeyPem: string;
}

/**
 * A chain as costly as an origin can make a replica verify it: `length` CA certificates above a leaf for
 * 127.0.0.1 and origin.internal, every one of them (leaf included) an RSA-3072 key whose public exponent is
 * as long as its modulus, each certificate issued by the next (OpenSSL verifies each signature, trusted or
 * not). One key serves them all: OpenSSL caches no verification. Kept in the temporary directory once made
 * (the key takes seconds), so test files and runs share it.
 */
export async function hostileCertificateChain(
  length = 40,
  /** The CA certificates' key usage (default: keyCertSign and cRLSign). */
  caKeyUsages?: number,
): Promise<HostileChain> {
  const directory = join(tmpdir(), 'vantageedge-test-material');
  const variant = caKeyUsages === undefined ? '' : `-usage-${caKeyUsages}`;
  const file = join(directory, `hostile-chain-v1-${length}${variant}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as HostileChain;
  const keyPair = await rsaKeysWithHugeExponent(3072);
  let issuer = await createTestCa('Hostile CA 0', { keyPair, keyUsages: caKeyUsages });
  const cas = [issuer.certificatePem];
  for (let i = 1; i < length; i++) {
    issuer = await createTestCa(`Hostile CA ${i}`, { keyPair, issuer, keyUsages: caKeyUsages });
    cas.unshift(issuer.certificatePem);
  }
  const leaf = await issueTestCertificate(issuer, {
    dnsNames: ['origin.internal'],
    ipAddresses: ['127.0.0.1'],
    keyPair,
  });
  const chain: HostileChain = {
    chainPem: [leaf.certificatePem, ...cas].join('\n'),
    privateKeyPem: keyPair.privateKeyPem,
  };
  mkdirSync(directory, { recursive: true });
  writeFileSync(`${file}.${process.pid}`, JSON.stringify(chain));
  // Written whole under another name first: a test file reading it meanwhile never sees half of it.
  renameSync(`${file}.${process.pid}`, file);
  return chain;
}

const YEAR_MS = 365 * 24 * 3600 * 1000;

/**
 * `hostileCertificateChain(length)` with a decoy sent right after the leaf: a CA certificate of the
 * leaf's issuer's name and key identifier, with a cheap key (RSA-2048, exponent 65537), issued by a CA
 * never sent; expired unless `valid`. OpenSSL passes over an expired candidate and verifies the whole
 * costly chain; node's `getPeerCertificate(true)` takes the first candidate, so the chain it reports ends
 * at the decoy. A valid decoy is the chain OpenSSL builds too, unless its trust store holds the issuer.
 */
export async function decoyedCertificateChain(length = 40, valid = false): Promise<HostileChain> {
  const chain = await hostileCertificateChain(length);
  const [leaf, ...cas] = chain.chainPem.split(/(?=-----BEGIN CERTIFICATE-----)/);
  const decoy = await createTestCa(`Hostile CA ${length - 1}`, {
    keyPair: await generateKeys('rsa'),
    issuer: await createTestCa('Decoy Issuer'),
    notBefore: new Date(Date.now() - 2 * YEAR_MS),
    notAfter: new Date(Date.now() + (valid ? YEAR_MS : -YEAR_MS)),
    keyIdentifierOf: cas[0],
  });
  return { ...chain, chainPem: [leaf, decoy.certificatePem, ...cas].join('\n') };
}
