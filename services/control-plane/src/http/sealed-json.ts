import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** A sealed value is base64 of its IV, its GCM tag and its encrypted JSON. */
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * AES-256-GCM for values at rest that must be given back later but never stored in clear — the stored
 * Idempotency-Key responses, which for API key issue/rotate contain the plaintext key.
 * The key is derived from API_KEY_PEPPER with HKDF, so no extra secret is needed.
 */
export class SealedJson {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(hkdfSync('sha256', secret, 'vantageedge', 'idempotency-response', 32));
  }

  seal(value: unknown): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(JSON.stringify(value ?? null), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), data]).toString('base64');
  }

  /** The bytes of JSON a sealed value of this length opens to (without opening it). */
  static openedBytes(sealedLength: number): number {
    return Math.max(0, Math.floor((sealedLength * 3) / 4) - IV_BYTES - TAG_BYTES);
  }

  open(sealed: string): unknown {
    const raw = Buffer.from(sealed, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return JSON.parse(
      Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8'),
    );
  }
}
