import { z } from 'zod';
import { commaList } from '../settings/common-settings.js';
import { type KeyRing, keyRing, parseKeyEncryptionKey } from './private-key-envelope.js';

const keyEncryptionKey = z.string().superRefine((value, ctx) => {
  try {
    parseKeyEncryptionKey(value);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

/**
 * The key-encryption key of tenant certificates' private keys, shared by the control plane (seals on
 * upload) and every gateway (opens to serve). Unset: the certificate endpoints answer 503 and gateways
 * serve only the default certificate.
 */
export const certificateEncryptionSettings = {
  CERTIFICATE_ENCRYPTION_KEY: keyEncryptionKey.optional(),
  /** Earlier keys still accepted to open (comma-separated), while certificates are sealed again. */
  CERTIFICATE_ENCRYPTION_PREVIOUS_KEYS: commaList.pipe(z.array(keyEncryptionKey)).optional(),
};

export function keyRingFromSettings(config: {
  CERTIFICATE_ENCRYPTION_KEY?: string | undefined;
  CERTIFICATE_ENCRYPTION_PREVIOUS_KEYS?: readonly string[] | undefined;
}): KeyRing | undefined {
  if (config.CERTIFICATE_ENCRYPTION_KEY === undefined) return undefined;
  return keyRing(config.CERTIFICATE_ENCRYPTION_KEY, config.CERTIFICATE_ENCRYPTION_PREVIOUS_KEYS ?? []);
}
