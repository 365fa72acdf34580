/** What the console shows about a session token: its user and when it expires (never verified here). */
export interface TokenClaims {
  userId: string;
  orgId: string | null;
  /** Seconds since the epoch. */
  expiresAt: number | null;
}

/** The claims of a Clerk-shaped session token, or why the text is not one. */
export function readTokenClaims(
  token: string,
): { ok: true; claims: TokenClaims } | { ok: false; issue: string } {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((part) => !/^[A-Za-z0-9_-]+$/.test(part))) {
    return { ok: false, issue: 'is not a session token (a JWT: three base64url parts separated by dots)' };
  }
  let payload: unknown;
  try {
    const base64 = (parts[1] as string).replaceAll('-', '+').replaceAll('_', '/');
    payload = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '=')));
  } catch {
    return { ok: false, issue: 'has a payload that is not JSON' };
  }
  if (typeof payload !== 'object' || payload === null) return { ok: false, issue: 'has no claims' };
  const claims = payload as Record<string, unknown>;
  if (typeof claims['sub'] !== 'string') return { ok: false, issue: 'names no user (sub)' };
  const org = claims['o'] as { id?: unknown } | undefined;
  const orgId =
    typeof claims['org_id'] === 'string' ? claims['org_id'] : typeof org?.id === 'string' ? org.id : null;
  return {
    ok: true,
    claims: {
      userId: claims['sub'],
      orgId,
      expiresAt: typeof claims['exp'] === 'number' ? claims['exp'] : null,
    },
  };
}

export function isExpired(claims: TokenClaims, nowSeconds = Date.now() / 1000): boolean {
  return claims.expiresAt !== null && claims.expiresAt <= nowSeconds;
}
