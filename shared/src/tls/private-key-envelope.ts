import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';

/**
 * Tenant certificates' private keys at rest (events, read models, snapshots on Kafka and on disk):
 * envelope encryption with AES-256-GCM. Each key gets its own random data key; the data key is
 * wrapped by the key-encryption key (CERTIFICATE_ENCRYPTION_KEY) that the control plane and the
 * gateways share. Both layers authenticate `context` (which certificate of which tenant), so a sealed
 * key copied onto another certificate or tenant does not open.
 *
 * Rotation: the envelope names its key-encryption key by id; a ring holds the current key (used to
 * seal) and previous keys (still accepted to open) until every certificate has been sealed again.
 */

export const ENVELOPE_ALGORITHM = 'aes-256-gcm-envelope-v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

const base64 = z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64');

export const sealedPrivateKey = z.strictObject({
  algorithm: z.literal(ENVELOPE_ALGORITHM),
  /** Which key-encryption key wrapped the data key (see keyEncryptionKeyId). */
  kek_id: z.string().regex(/^[0-9a-f]{16}$/),
  /** The data key, AES-256-GCM under the key-encryption key: iv ‖ ciphertext ‖ tag. */
  wrapped_key: base64,
  /** The PEM private key, AES-256-GCM under the data key: iv ‖ ciphertext ‖ tag. */
  ciphertext: base64,
});
export type SealedPrivateKey = z.infer<typeof sealedPrivateKey>;

export interface KeyEncryptionKey {
  readonly id: string;
  readonly key: Buffer;
}

/** The key that seals and every key that may still open (current first). */
export interface KeyRing {
  readonly current: KeyEncryptionKey;
  readonly previous: readonly KeyEncryptionKey[];
}

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
}

/** A short public name of a key-encryption key (not reversible into the key). */
export function keyEncryptionKeyId(key: Buffer): string {
  return createHash('sha256').update('vantageedge certificate kek\0').update(key).digest('hex').slice(0, 16);
}

/** 32 bytes written as base64 (`openssl rand -base64 32`) or as 64 hex digits. */
export function parseKeyEncryptionKey(text: string): KeyEncryptionKey {
  const trimmed = text.trim();
  let key: Buffer;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) key = Buffer.from(trimmed, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=$/.test(trimmed)) key = Buffer.from(trimmed, 'base64');
  else
    throw new EnvelopeError('must be 32 random bytes as base64 (openssl rand -base64 32) or 64 hex digits');
  if (key.length !== KEY_BYTES) throw new EnvelopeError('must decode to exactly 32 bytes');
  return { id: keyEncryptionKeyId(key), key };
}

export function keyRing(current: string, previous: readonly string[] = []): KeyRing {
  return { current: parseKeyEncryptionKey(current), previous: previous.map(parseKeyEncryptionKey) };
}

function encrypt(key: Buffer, plaintext: Buffer, context: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(context);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

function decrypt(key: Buffer, sealed: Buffer, context: Buffer): Buffer {
  if (sealed.length < IV_BYTES + TAG_BYTES) throw new EnvelopeError('sealed value is truncated');
  const iv = sealed.subarray(0, IV_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(context);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([
      decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    throw new EnvelopeError('sealed private key does not open (wrong key, wrong certificate or tampered)');
  }
}

/** What a sealed key is bound to: a sealed key only opens for the same certificate of the same tenant. */
export function certificateKeyContext(tenantId: string, certificateId: string): string {
  return `tenant:${tenantId}/certificate:${certificateId}`;
}

export function sealPrivateKey(ring: KeyRing, privateKeyPem: string, context: string): SealedPrivateKey {
  const dataKey = randomBytes(KEY_BYTES);
  const aad = Buffer.from(context, 'utf8');
  try {
    return {
      algorithm: ENVELOPE_ALGORITHM,
      kek_id: ring.current.id,
      wrapped_key: encrypt(ring.current.key, dataKey, aad).toString('base64'),
      ciphertext: encrypt(dataKey, Buffer.from(privateKeyPem, 'utf8'), aad).toString('base64'),
    };
  } finally {
    dataKey.fill(0);
  }
}

export function openPrivateKey(ring: KeyRing, sealed: SealedPrivateKey, context: string): string {
  const kek = [ring.current, ...ring.previous].find((candidate) => candidate.id === sealed.kek_id);
  if (kek === undefined) {
    throw new EnvelopeError(
      `sealed with key-encryption key ${sealed.kek_id}, which is neither CERTIFICATE_ENCRYPTION_KEY nor one of CERTIFICATE_ENCRYPTION_PREVIOUS_KEYS`,
    );
  }
  const aad = Buffer.from(context, 'utf8');
  const dataKey = decrypt(kek.key, Buffer.from(sealed.wrapped_key, 'base64'), aad);
  try {
    return decrypt(dataKey, Buffer.from(sealed.ciphertext, 'base64'), aad).toString('utf8');
  } finally {
    dataKey.fill(0);
  }
}

/** True when the key was sealed under an older key-encryption key and should be sealed again. */
export function needsResealing(ring: KeyRing, sealed: SealedPrivateKey): boolean {
  return sealed.kek_id !== ring.current.id;
}
