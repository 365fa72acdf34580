import '@vantageedge/shared/settings/env-file';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { ClerkTestKeys } from '@vantageedge/shared/testing/clerk-tokens';
import { SignJWT } from 'jose';
import { DEV_CLERK_ISSUER, DEV_TOKEN_CLAIM, loadOrCreateDevKeys } from './dev-keys.js';
import { DEV_ADMIN_USER_ID, devDataDir, devEnvironment } from './dev-settings.js';

/**
 * `make dev-token [USER=… ORG=… ROLE=…]`: a Clerk-shaped (v2) session token signed with make dev's
 * development key pair. It carries the claim `vantageedge_dev`, so only a control plane or gateway
 * started with VANTAGEEDGE_DEV_MODE=true accepts it; everywhere else it is a 401.
 */

export interface DevTokenClaims {
  userId: string;
  orgId?: string | undefined;
  /** "admin" / "member" or the full "org:admin" form. */
  orgRole?: string | undefined;
  /** Lifetime in seconds (default 12 hours). */
  expiresInSeconds?: number | undefined;
}

export const DEV_TOKEN_TTL_SECONDS = 12 * 60 * 60;

export async function signDevToken(keys: ClerkTestKeys, claims: DevTokenClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const role = claims.orgRole ?? 'admin';
  const payload: Record<string, unknown> = {
    sid: `sess_dev_${randomUUID().replaceAll('-', '').slice(0, 20)}`,
    iss: DEV_CLERK_ISSUER,
    v: 2,
    [DEV_TOKEN_CLAIM]: true,
    ...(claims.orgId
      ? {
          o: {
            id: claims.orgId,
            rol: role.startsWith('org:') ? role.slice(4) : role,
            slg: claims.orgId,
            per: '',
            fpm: '',
          },
        }
      : {}),
  };
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: keys.kid })
    .setSubject(claims.userId)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + (claims.expiresInSeconds ?? DEV_TOKEN_TTL_SECONDS))
    .sign(keys.privateKey);
}

/** The user a dev token is for by default: the first platform admin of dev mode. */
export function defaultDevUser(env: Record<string, string | undefined>): string {
  const admins = (devEnvironment(env)['PLATFORM_ADMIN_USER_IDS'] ?? '').split(',').map((s) => s.trim());
  return admins.find((id) => id !== '') ?? DEV_ADMIN_USER_ID;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      user: { type: 'string' },
      org: { type: 'string' },
      role: { type: 'string' },
      ttl: { type: 'string' },
    },
  });
  const keys = await loadOrCreateDevKeys(devDataDir(process.env));
  const configured = process.env['CLERK_JWT_KEY']?.replaceAll('\\n', '\n').trim();
  if (configured && configured !== keys.publicKeyPem.trim()) {
    process.stderr.write(
      'dev-token: CLERK_JWT_KEY is set to another key, so make dev verifies with that key and this token will be refused\n',
    );
  }
  const userId = values.user || defaultDevUser(process.env);
  const token = await signDevToken(keys, {
    userId,
    orgId: values.org || undefined,
    orgRole: values.role || undefined,
    expiresInSeconds: values.ttl ? Number(values.ttl) : undefined,
  });
  process.stderr.write(
    `# DEVELOPMENT-ONLY token for ${userId}${values.org ? ` (org ${values.org})` : ''}, valid ${Math.round(
      (values.ttl ? Number(values.ttl) : DEV_TOKEN_TTL_SECONDS) / 3600,
    )} h; accepted only by services started in dev mode (make dev)\n`,
  );
  process.stdout.write(`${token}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await main();
}
