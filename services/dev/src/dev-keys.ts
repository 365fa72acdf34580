import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ClerkTestKeys } from '@vantageedge/shared/testing/clerk-tokens';
import { exportPKCS8, exportSPKI, generateKeyPair, importPKCS8 } from 'jose';

/**
 * The development-only Clerk key pair `make dev` uses when no CLERK_JWT_KEY is configured. Kept in
 * `.data/dev/clerk-dev-key.json` so tokens from `make dev-token` stay valid across restarts.
 * Tokens signed with it carry the claim DEV_TOKEN_CLAIM, which services refuse unless they were
 * started in dev mode (VANTAGEEDGE_DEV_MODE=true).
 */

export const DEV_TOKEN_CLAIM = 'vantageedge_dev';

/** The `iss` of development tokens: make dev and `make compose-env` give it as CLERK_ISSUER. */
export const DEV_CLERK_ISSUER = 'https://offline.clerk.accounts.dev';

interface StoredKey {
  kid: string;
  private_key_pem: string;
  public_key_pem: string;
}

export function devKeyFile(repoDataDir: string): string {
  return path.join(repoDataDir, 'dev', 'clerk-dev-key.json');
}

export async function loadOrCreateDevKeys(repoDataDir: string): Promise<ClerkTestKeys> {
  const file = devKeyFile(repoDataDir);
  if (existsSync(file)) {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as StoredKey;
    return {
      kid: stored.kid,
      publicKeyPem: stored.public_key_pem,
      privateKey: await importPKCS8(stored.private_key_pem, 'RS256'),
    };
  }
  // Clerk's PEM loader only understands RSA-2048 with e=65537.
  const { privateKey, publicKey } = await generateKeyPair('RS256', {
    modulusLength: 2048,
    extractable: true,
  });
  const stored: StoredKey = {
    kid: `ins_dev_${randomUUID().slice(0, 8)}`,
    private_key_pem: await exportPKCS8(privateKey),
    public_key_pem: await exportSPKI(publicKey),
  };
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(stored, null, 2), { mode: 0o600 });
  return { kid: stored.kid, publicKeyPem: stored.public_key_pem, privateKey };
}
