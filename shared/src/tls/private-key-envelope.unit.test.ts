import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  certificateKeyContext,
  EnvelopeError,
  keyRing,
  needsResealing,
  openPrivateKey,
  parseKeyEncryptionKey,
  sealedPrivateKey,
  sealPrivateKey,
} from './private-key-envelope.js';

const PEM =
  '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';
const newKey = () => randomBytes(32).toString('base64');
const context = certificateKeyContext('tenant-a', 'certificate-1');

describe('private key envelope (AES-256-GCM, data key wrapped by the key-encryption key)', () => {
  it('opens what it sealed, and the sealed form never contains the key in clear', () => {
    const ring = keyRing(newKey());
    const sealed = sealPrivateKey(ring, PEM, context);
    expect(sealedPrivateKey.parse(sealed)).toEqual(sealed);
    expect(JSON.stringify(sealed)).not.toContain('PRIVATE KEY');
    expect(JSON.stringify(sealed)).not.toContain(Buffer.from(PEM).toString('base64').slice(0, 20));
    expect(openPrivateKey(ring, sealed, context)).toBe(PEM);
  });

  it('seals the same key differently each time (random data key and IVs)', () => {
    const ring = keyRing(newKey());
    expect(sealPrivateKey(ring, PEM, context).ciphertext).not.toBe(
      sealPrivateKey(ring, PEM, context).ciphertext,
    );
  });

  it('does not open under another key-encryption key', () => {
    const sealed = sealPrivateKey(keyRing(newKey()), PEM, context);
    expect(() => openPrivateKey(keyRing(newKey()), sealed, context)).toThrow(EnvelopeError);
  });

  it('does not open for another certificate or another tenant (the context is authenticated)', () => {
    const ring = keyRing(newKey());
    const sealed = sealPrivateKey(ring, PEM, context);
    expect(() => openPrivateKey(ring, sealed, certificateKeyContext('tenant-b', 'certificate-1'))).toThrow(
      /does not open/,
    );
    expect(() => openPrivateKey(ring, sealed, certificateKeyContext('tenant-a', 'certificate-2'))).toThrow(
      /does not open/,
    );
  });

  it('detects a tampered ciphertext', () => {
    const ring = keyRing(newKey());
    const sealed = sealPrivateKey(ring, PEM, context);
    const bytes = Buffer.from(sealed.ciphertext, 'base64');
    bytes[20] = (bytes[20] ?? 0) ^ 1;
    expect(() => openPrivateKey(ring, { ...sealed, ciphertext: bytes.toString('base64') }, context)).toThrow(
      EnvelopeError,
    );
  });

  it('rotation: a ring with the old key as previous opens old envelopes and seals under the new key', () => {
    const oldKey = newKey();
    const currentKey = newKey();
    const old = sealPrivateKey(keyRing(oldKey), PEM, context);
    const rotated = keyRing(currentKey, [oldKey]);
    expect(openPrivateKey(rotated, old, context)).toBe(PEM);
    expect(needsResealing(rotated, old)).toBe(true);
    const resealed = sealPrivateKey(rotated, openPrivateKey(rotated, old, context), context);
    expect(needsResealing(rotated, resealed)).toBe(false);
    expect(openPrivateKey(keyRing(currentKey), resealed, context)).toBe(PEM);
  });

  it('accepts 32 bytes as base64 or hex and refuses anything else', () => {
    const raw = randomBytes(32);
    expect(parseKeyEncryptionKey(raw.toString('base64')).id).toBe(
      parseKeyEncryptionKey(raw.toString('hex')).id,
    );
    expect(() => parseKeyEncryptionKey('too-short')).toThrow(/32 random bytes/);
    expect(() => parseKeyEncryptionKey(randomBytes(16).toString('base64'))).toThrow(EnvelopeError);
    expect(() => parseKeyEncryptionKey(randomBytes(48).toString('base64'))).toThrow(EnvelopeError);
  });
});
