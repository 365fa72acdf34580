import type { JwtJsonObject } from '@vantageedge/shared/json/compact-jws-refusal';

/**
 * A token's registered claims (exp, nbf, iat, iss, aud, sub) judged on the claims set the gateway parsed
 * once, after the signature over the same bytes was checked: `expired` (401 token_expired), `invalid`
 * (401 invalid_token), or undefined when they hold. Each function makes a verifier library's checks in
 * its order and with its arithmetic, so a token is judged as that library judges it: jose's jwtVerify
 * for OIDC and service tokens, Clerk's verifyJwt for Clerk session tokens
 * (token-claim-checks.unit.test.ts compares them case by case).
 */
export type ClaimsVerdict = 'expired' | 'invalid' | undefined;

export interface JwtClaimRules {
  readonly issuer?: string;
  /** Taken when the token's `aud` is, or lists, one of these. */
  readonly audience?: string | readonly string[];
  readonly requiredClaims?: readonly string[];
  /** Longest age (now − iat) accepted; iat is then required. */
  readonly maxTokenAgeSeconds?: number;
  readonly clockToleranceSeconds: number;
}

/** jose's jwtVerify checks (its validateClaimsSet) for these rules. */
export function jwtClaimsVerdict(
  claims: JwtJsonObject,
  rules: JwtClaimRules,
  nowSeconds = Math.floor(Date.now() / 1000),
): ClaimsVerdict {
  const { issuer, audience, maxTokenAgeSeconds, clockToleranceSeconds: tolerance } = rules;
  const required = new Set(rules.requiredClaims);
  if (maxTokenAgeSeconds !== undefined) required.add('iat');
  if (audience !== undefined) required.add('aud');
  if (issuer !== undefined) required.add('iss');
  for (const claim of required) if (!Object.hasOwn(claims, claim)) return 'invalid';
  if (issuer !== undefined && claims['iss'] !== issuer) return 'invalid';
  if (audience !== undefined && !namesAudience(claims['aud'], audience)) return 'invalid';
  const { iat, nbf, exp } = claims;
  if (iat !== undefined && typeof iat !== 'number') return 'invalid';
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > nowSeconds + tolerance)) return 'invalid';
  if (exp !== undefined && typeof exp !== 'number') return 'invalid';
  if (typeof exp === 'number' && exp <= nowSeconds - tolerance) return 'expired';
  if (maxTokenAgeSeconds !== undefined) {
    const age = nowSeconds - (iat as number);
    if (age - tolerance > maxTokenAgeSeconds) return 'expired';
    if (age < -tolerance) return 'invalid';
  }
  return undefined;
}

function namesAudience(aud: unknown, audience: string | readonly string[]): boolean {
  const accepted = typeof audience === 'string' ? [audience] : audience;
  if (typeof aud === 'string') return accepted.includes(aud);
  return Array.isArray(aud) && accepted.some((name) => aud.includes(name));
}

/** Clerk's session-token algorithms (its verifyJwt refuses any other `alg`). */
export const CLERK_TOKEN_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512'];

/** Clerk's verifyJwt checks of the header, made before the signature: `typ` JWT or none, an RSA `alg`. */
export function clerkHeaderVerdict(header: JwtJsonObject): ClaimsVerdict {
  if (header['typ'] !== undefined && header['typ'] !== 'JWT') return 'invalid';
  return CLERK_TOKEN_ALGORITHMS.includes(header['alg'] as string) ? undefined : 'invalid';
}

/**
 * Clerk's verifyJwt checks of the claims, made after the signature: a string `sub`, the `iss` when an
 * issuer is set, a numeric `exp` not past (the skew allowed), `nbf` and `iat` not ahead, read as Clerk
 * reads them (whole seconds of a Date: a value past a Date's range is never past nor ahead).
 */
export function clerkClaimsVerdict(
  claims: JwtJsonObject,
  rules: { issuer?: string | undefined; clockSkewMs: number },
  nowMs = Date.now(),
): ClaimsVerdict {
  const { sub, iss, exp, nbf, iat } = claims;
  const skew = rules.clockSkewMs;
  if (typeof sub !== 'string') return 'invalid';
  if (rules.issuer && iss !== rules.issuer) return 'invalid';
  if (typeof exp !== 'number') return 'invalid';
  if (clerkDateMs(exp) <= nowMs - skew) return 'expired';
  for (const notAhead of [nbf, iat]) {
    if (notAhead === undefined) continue;
    if (typeof notAhead !== 'number' || clerkDateMs(notAhead) > nowMs + skew) return 'invalid';
  }
  return undefined;
}

/** A NumericDate as Clerk's SDK reads it: `new Date(0).setUTCSeconds(seconds)` (NaN past a Date's range). */
function clerkDateMs(seconds: number): number {
  return new Date(0).setUTCSeconds(seconds);
}
