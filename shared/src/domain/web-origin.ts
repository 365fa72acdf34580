import { z } from 'zod';

/**
 * An origin written exactly as browsers send it in `Origin` (and Clerk copies into a token's `azp`):
 * scheme://host[:port], lower case, no default port, path or trailing slash. Clerk compares `azp` with
 * each authorized party as a string, so any other spelling would match no token.
 */
export function isWebOrigin(value: string): boolean {
  try {
    return new URL(value).origin === value;
  } catch {
    return false;
  }
}

/** Longest origin accepted in a tenant's settings (a host name is at most 253 characters). */
export const MAX_WEB_ORIGIN_CHARS = 300;

/** Most apps a tenant may list as authorized parties. */
export const MAX_AUTHORIZED_PARTIES = 50;

/**
 * A tenant's authorized parties (settings.authorized_parties): the origins of its own web apps, the only
 * `azp` its routes take on a Clerk session token. At least one: no list (null) is the gateways' own.
 */
export const tenantAuthorizedParties = z
  .array(
    z
      .string()
      .max(MAX_WEB_ORIGIN_CHARS, `must be at most ${MAX_WEB_ORIGIN_CHARS} characters`)
      .refine(
        isWebOrigin,
        'must be an origin as browsers send it: scheme://host[:port], lower case, no path or trailing slash (e.g. https://app.example.com)',
      ),
  )
  .min(1, 'must list at least one origin (null: the gateways’ CLERK_AUTHORIZED_PARTIES)')
  .max(MAX_AUTHORIZED_PARTIES, `must list at most ${MAX_AUTHORIZED_PARTIES} origins`);
