import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API keys: `ve_live_` + 32 base64url characters (24 random bytes = 192 bits). Only the keyed hash
 * HMAC-SHA-256(API_KEY_PEPPER, key) is stored; without the pepper a leaked hash list cannot be
 * brute-forced offline. The control plane hashes when issuing, the gateway when authenticating.
 */
export const API_KEY_PREFIX = 've_live_';
const RANDOM_BYTES = 24;
/** How many leading characters of a key are safe to store and show (prefix + 4 random characters). */
export const API_KEY_DISPLAY_PREFIX_LENGTH = API_KEY_PREFIX.length + 4;
const KEY_PATTERN = /^ve_live_[A-Za-z0-9_-]{32}$/;

export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(RANDOM_BYTES).toString('base64url');
}

/** Whether a presented value has the shape of one of our keys (cheap rejection before hashing). */
export function looksLikeApiKey(value: string): boolean {
  return KEY_PATTERN.test(value);
}

/** HMAC-SHA-256(pepper, key) as lowercase hex. */
export function hashApiKey(pepper: string, key: string): string {
  return createHmac('sha256', pepper).update(key, 'utf8').digest('hex');
}

/** The part of a key shown in lists, e.g. "ve_live_ab12". */
export function apiKeyDisplayPrefix(key: string): string {
  return key.slice(0, API_KEY_DISPLAY_PREFIX_LENGTH);
}

/** Constant-time comparison of two hex hashes. */
export function sameApiKeyHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}
