import { createClerkClient } from '@clerk/backend';
import { decodeProtectedHeader } from 'jose';

/** The least time between two fetches of the instance's JWKS made because a token named an unknown kid. */
const JWKS_REFRESH_MS = 30_000;

/** Whether a session token's `kid` names one of the Clerk instance's signing keys. */
export type SigningKeyGate = (token: string) => Promise<boolean>;

/**
 * With CLERK_SECRET_KEY and no CLERK_JWT_KEY, Clerk fetches the instance's JWKS from its Backend API for
 * every token whose kid it has not cached: made-up kids made one call (with retries) per request of any
 * client, before any rate limit, until Clerk throttled the secret key and nobody could sign in. Tokens
 * reach Clerk only when their kid is one of the instance's keys, learned here at most once per
 * JWKS_REFRESH_MS (a key rotation is picked up by the first token naming the new key after that).
 */
export function createSigningKeyGate(
  fetchKids: () => Promise<readonly string[]>,
  clock: () => number = Date.now,
): SigningKeyGate {
  let kids = new Set<string>();
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let refreshing: Promise<void> | undefined;
  const refresh = (): Promise<void> => {
    refreshing ??= fetchKids()
      .then(
        (fetched) => {
          kids = new Set(fetched);
        },
        () => {}, // Clerk unreachable: the kids known so far stay, the token is refused.
      )
      .finally(() => {
        fetchedAt = clock();
        refreshing = undefined;
      });
    return refreshing;
  };
  return async (token) => {
    const kid = tokenKid(token);
    // Clerk's tokens always name their key; one without (or unreadable) is refused without a fetch.
    if (kid === undefined) return false;
    if (kids.has(kid)) return true;
    if (clock() - fetchedAt >= JWKS_REFRESH_MS) await refresh();
    return kids.has(kid);
  };
}

/** The JWKS kids of the Clerk instance the secret key belongs to (CLERK_API_URL as Clerk's middleware). */
export function clerkSigningKeyIds(secretKey: string): () => Promise<readonly string[]> {
  const apiUrl = process.env['CLERK_API_URL'];
  const client = createClerkClient({ secretKey, ...(apiUrl ? { apiUrl } : {}) });
  return async () => (await client.jwks.getJwks()).keys?.flatMap((key) => (key.kid ? [key.kid] : [])) ?? [];
}

function tokenKid(token: string): string | undefined {
  try {
    const { kid } = decodeProtectedHeader(token);
    return typeof kid === 'string' && kid !== '' ? kid : undefined;
  } catch {
    return undefined;
  }
}
