import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { verifyJwt } from '@clerk/backend/jwt';
import { CompactSign, errors as joseErrors, jwtVerify } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type ClaimsVerdict,
  clerkClaimsVerdict,
  clerkHeaderVerdict,
  type JwtClaimRules,
  jwtClaimsVerdict,
} from './token-claim-checks.js';

/** A fixed "now", in seconds, far from any boundary the cases below cross. */
const NOW = 1_800_000_000;
const ISSUER = 'https://idp.claims.test';

let privateKey: KeyObject;
let publicKey: KeyObject;

beforeAll(() => {
  ({ privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 }));
});

afterEach(() => {
  vi.useRealTimers();
});

/** A token over the claims set exactly as written (numbers such as 1e400 or 1.5 included). */
function sign(claimsJson: string, header: Record<string, unknown> = { alg: 'RS256' }): Promise<string> {
  return new CompactSign(new TextEncoder().encode(claimsJson))
    .setProtectedHeader(header as { alg: string })
    .sign(privateKey);
}

/**
 * The claims sets below as JSON text, so that values JSON.parse reads specially (1e400 is Infinity)
 * reach both the verifier and the checks as a token carries them.
 */
const oidcCases: Record<string, string> = {
  valid: `{"iss":"${ISSUER}","aud":"api","sub":"u","exp":${NOW + 60}}`,
  'aud listed in an array': `{"iss":"${ISSUER}","aud":["x","api"],"sub":"u","exp":${NOW + 60}}`,
  'aud array without it': `{"iss":"${ISSUER}","aud":["x"],"sub":"u","exp":${NOW + 60}}`,
  'aud a number': `{"iss":"${ISSUER}","aud":7,"sub":"u","exp":${NOW + 60}}`,
  'no aud': `{"iss":"${ISSUER}","sub":"u","exp":${NOW + 60}}`,
  'no iss': `{"aud":"api","sub":"u","exp":${NOW + 60}}`,
  'another iss': `{"iss":"https://other.test","aud":"api","sub":"u","exp":${NOW + 60}}`,
  'iss not a string': `{"iss":["${ISSUER}"],"aud":"api","sub":"u","exp":${NOW + 60}}`,
  'no sub': `{"iss":"${ISSUER}","aud":"api","exp":${NOW + 60}}`,
  'no exp': `{"iss":"${ISSUER}","aud":"api","sub":"u"}`,
  'exp a string': `{"iss":"${ISSUER}","aud":"api","sub":"u","exp":"${NOW + 60}"}`,
  'exp at the tolerance': `{"iss":"${ISSUER}","aud":"api","sub":"u","exp":${NOW - 5}}`,
  'exp just inside the tolerance': `{"iss":"${ISSUER}","aud":"api","sub":"u","exp":${NOW - 4.5}}`,
  'exp past': `{"iss":"${ISSUER}","aud":"api","sub":"u","exp":${NOW - 3600}}`,
  'exp infinite': `{"iss":"${ISSUER}","aud":"api","sub":"u","exp":1e400}`,
  'exp minus infinite': `{"iss":"${ISSUER}","aud":"api","sub":"u","exp":-1e400}`,
  'nbf inside the tolerance': `{"iss":"${ISSUER}","aud":"api","sub":"u","exp":${NOW + 60},"nbf":${NOW + 5}}`,
  'nbf ahead': `{"iss":"${ISSUER}","aud":"api","sub":"u","exp":${NOW + 60},"nbf":${NOW + 6}}`,
  'nbf a string': `{"iss":"${ISSUER}","aud":"api","sub":"u","exp":${NOW + 60},"nbf":"0"}`,
  'nbf ahead and exp past': `{"iss":"${ISSUER}","aud":"api","sub":"u","exp":${NOW - 60},"nbf":${NOW + 60}}`,
  'iat a string and exp past': `{"iss":"${ISSUER}","aud":"api","sub":"u","exp":${NOW - 60},"iat":"x"}`,
  'iat ahead, no age bound': `{"iss":"${ISSUER}","aud":"api","sub":"u","exp":${NOW + 60},"iat":${NOW + 600}}`,
};

const serviceCases: Record<string, string> = {
  valid: `{"aud":"a.test","sub":"svc","exp":${NOW + 60},"iat":${NOW - 10}}`,
  'no iat': `{"aud":"a.test","sub":"svc","exp":${NOW + 60}}`,
  'iat at the age bound': `{"aud":"a.test","sub":"svc","exp":${NOW + 60},"iat":${NOW - 305}}`,
  'iat past the age bound': `{"aud":"a.test","sub":"svc","exp":${NOW + 60},"iat":${NOW - 306}}`,
  'iat inside the tolerance ahead': `{"aud":"a.test","sub":"svc","exp":${NOW + 60},"iat":${NOW + 5}}`,
  'iat ahead': `{"aud":"a.test","sub":"svc","exp":${NOW + 60},"iat":${NOW + 6}}`,
  'iat past the bound and exp past': `{"aud":"a.test","sub":"svc","exp":${NOW - 60},"iat":${NOW - 900}}`,
  'iat a string': `{"aud":["b.test","a.test"],"sub":"svc","exp":${NOW + 60},"iat":"${NOW}"}`,
  'another host': `{"aud":"c.test","sub":"svc","exp":${NOW + 60},"iat":${NOW}}`,
  'iat minus infinite': `{"aud":"a.test","sub":"svc","exp":${NOW + 60},"iat":-1e400}`,
};

async function joseVerdict(token: string, rules: JwtClaimRules): Promise<ClaimsVerdict> {
  try {
    await jwtVerify(token, publicKey, {
      ...(rules.issuer === undefined ? {} : { issuer: rules.issuer }),
      ...(rules.audience === undefined ? {} : { audience: rules.audience as string | string[] }),
      ...(rules.maxTokenAgeSeconds === undefined ? {} : { maxTokenAge: rules.maxTokenAgeSeconds }),
      requiredClaims: [...(rules.requiredClaims ?? [])],
      clockTolerance: rules.clockToleranceSeconds,
      currentDate: new Date(NOW * 1000),
    });
    return undefined;
  } catch (error) {
    return error instanceof joseErrors.JWTExpired ? 'expired' : 'invalid';
  }
}

describe('jwtClaimsVerdict: the claim checks of jose’s jwtVerify on claims parsed once', () => {
  const oidcRules: JwtClaimRules = {
    issuer: ISSUER,
    audience: 'api',
    requiredClaims: ['exp', 'sub'],
    clockToleranceSeconds: 5,
  };
  const serviceRules: JwtClaimRules = {
    audience: ['a.test', 'b.test'],
    requiredClaims: ['exp', 'iat', 'sub'],
    maxTokenAgeSeconds: 300,
    clockToleranceSeconds: 5,
  };

  it.each([
    ...Object.entries(oidcCases).map(([name, json]) => [`OIDC: ${name}`, json, oidcRules] as const),
    ...Object.entries(serviceCases).map(([name, json]) => [`service: ${name}`, json, serviceRules] as const),
  ])('judges %s as jwtVerify does', async (_name, json, rules) => {
    const expected = await joseVerdict(await sign(json), rules);
    expect(jwtClaimsVerdict(JSON.parse(json), rules, NOW)).toBe(expected);
  });

  it('covers each verdict', () => {
    const verdicts = Object.values(oidcCases).map((json) =>
      jwtClaimsVerdict(JSON.parse(json), oidcRules, NOW),
    );
    expect(new Set(verdicts)).toEqual(new Set([undefined, 'invalid', 'expired']));
  });
});

async function clerkVerdict(token: string, issuer: string | undefined): Promise<ClaimsVerdict> {
  try {
    await verifyJwt(token, {
      key: publicKey.export({ format: 'jwk' }) as Parameters<typeof verifyJwt>[1]['key'],
      ...(issuer === undefined ? {} : { issuer }),
    });
    return undefined;
  } catch (error) {
    return (error as { reason?: unknown }).reason === 'token-expired' ? 'expired' : 'invalid';
  }
}

describe('clerkClaimsVerdict and clerkHeaderVerdict: the checks of Clerk’s verifyJwt', () => {
  const nowMs = NOW * 1000 + 250;
  const clerkCases: Record<string, string> = {
    valid: `{"sub":"user_1","iss":"${ISSUER}","exp":${NOW + 60}}`,
    'no sub': `{"iss":"${ISSUER}","exp":${NOW + 60}}`,
    'sub a number': `{"sub":1,"iss":"${ISSUER}","exp":${NOW + 60}}`,
    'another iss': `{"sub":"user_1","iss":"https://other.test","exp":${NOW + 60}}`,
    'no iss': `{"sub":"user_1","exp":${NOW + 60}}`,
    'no exp': `{"sub":"user_1","iss":"${ISSUER}"}`,
    'exp a string': `{"sub":"user_1","iss":"${ISSUER}","exp":"${NOW + 60}"}`,
    'exp at the skew': `{"sub":"user_1","iss":"${ISSUER}","exp":${NOW - 5}}`,
    'exp inside the skew': `{"sub":"user_1","iss":"${ISSUER}","exp":${NOW - 4}}`,
    'exp fractional, read in whole seconds': `{"sub":"user_1","iss":"${ISSUER}","exp":${NOW - 4.5}}`,
    'exp past a Date’s range': `{"sub":"user_1","iss":"${ISSUER}","exp":1e20}`,
    'exp infinite': `{"sub":"user_1","iss":"${ISSUER}","exp":1e400}`,
    'exp far in the past': `{"sub":"user_1","iss":"${ISSUER}","exp":-1e12}`,
    'nbf inside the skew': `{"sub":"user_1","iss":"${ISSUER}","exp":${NOW + 60},"nbf":${NOW + 5}}`,
    'nbf ahead': `{"sub":"user_1","iss":"${ISSUER}","exp":${NOW + 60},"nbf":${NOW + 6}}`,
    'nbf a string': `{"sub":"user_1","iss":"${ISSUER}","exp":${NOW + 60},"nbf":"0"}`,
    'nbf ahead and exp past': `{"sub":"user_1","iss":"${ISSUER}","exp":${NOW - 60},"nbf":${NOW + 60}}`,
    'iat ahead': `{"sub":"user_1","iss":"${ISSUER}","exp":${NOW + 60},"iat":${NOW + 6}}`,
    'iat a string': `{"sub":"user_1","iss":"${ISSUER}","exp":${NOW + 60},"iat":"x"}`,
  };

  it.each(
    Object.entries(clerkCases).flatMap(([name, json]) => [
      [`${name}, issuer checked`, json, ISSUER] as const,
      [`${name}, no issuer set`, json, undefined] as const,
    ]),
  )('judges %s as verifyJwt does', async (_name, json, issuer) => {
    const token = await sign(json);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(nowMs);
    const expected = await clerkVerdict(token, issuer);
    expect(clerkClaimsVerdict(JSON.parse(json), { issuer, clockSkewMs: 5_000 }, nowMs)).toBe(expected);
  });

  it.each([
    [{ alg: 'RS256' }],
    [{ alg: 'RS384', typ: 'JWT' }],
    [{ alg: 'RS512' }],
    [{ alg: 'RS256', typ: 'jwt' }],
    [{ alg: 'RS256', typ: 'at+jwt' }],
    [{ alg: 'PS256' }],
  ])('judges the header %j as verifyJwt does', async (header) => {
    const json = `{"sub":"user_1","exp":${NOW + 60}}`;
    const token = await sign(json, header);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(nowMs);
    const expected = await clerkVerdict(token, undefined);
    const verdict =
      clerkHeaderVerdict(header) ?? clerkClaimsVerdict(JSON.parse(json), { clockSkewMs: 5_000 }, nowMs);
    expect(verdict).toBe(expected);
  });
});
