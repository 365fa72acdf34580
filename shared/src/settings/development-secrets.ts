import { parseKeyEncryptionKey } from '../tls/private-key-envelope.js';

/**
 * The secrets `make dev` fills in when unset. They are published in this repository, so a process
 * outside development mode refuses them (developmentSecretProblems): a gateway or control plane
 * deployed with a copied dev .env would otherwise let anyone recompute API-key hashes or open
 * tenant certificates' private keys.
 */

/** The development-only pepper of make dev (never use it anywhere else). */
export const DEV_API_KEY_PEPPER = 'vantageedge-dev-only-pepper-not-for-production-0001';
/** The development-only key-encryption key of make dev's tenant certificates (never use it anywhere else). */
export const DEV_CERTIFICATE_ENCRYPTION_KEY = 'dmFudGFnZWVkZ2UtZGV2LW9ubHkta2VrLTAwMDAwMDE=';

/**
 * Outside dev mode, the settings holding one of those secrets. The dev key stays accepted among
 * CERTIFICATE_ENCRYPTION_PREVIOUS_KEYS, so keys sealed under it can be resealed under a new one.
 */
export function developmentSecretProblems(settings: {
  API_KEY_PEPPER: string;
  CERTIFICATE_ENCRYPTION_KEY?: string | undefined;
  VANTAGEEDGE_DEV_MODE: boolean;
}): Array<{ setting: string; issue: string }> {
  if (settings.VANTAGEEDGE_DEV_MODE) return [];
  const issue = 'is make dev’s published development value: set a secret of your own';
  const problems: Array<{ setting: string; issue: string }> = [];
  if (settings.API_KEY_PEPPER === DEV_API_KEY_PEPPER) problems.push({ setting: 'API_KEY_PEPPER', issue });
  // Compared as keys: the same 32 bytes may be written in base64 or in hex.
  const current = settings.CERTIFICATE_ENCRYPTION_KEY;
  if (current !== undefined && parseKeyEncryptionKey(current).id === DEV_KEY_ID)
    problems.push({ setting: 'CERTIFICATE_ENCRYPTION_KEY', issue });
  return problems;
}

const DEV_KEY_ID = parseKeyEncryptionKey(DEV_CERTIFICATE_ENCRYPTION_KEY).id;
