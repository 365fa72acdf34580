import { createHmac } from 'node:crypto';

/**
 * The keyed hash the control plane stores for every API key: HMAC-SHA-256(API_KEY_PEPPER, plaintext)
 * as lowercase hex. Kept in this one function until shared/src/domain/api-key-hash.ts lands; both
 * must produce the same bytes or no key will ever match.
 */
export function hashApiKey(pepper: string, plaintextKey: string): string {
  return createHmac('sha256', pepper).update(plaintextKey).digest('hex');
}
