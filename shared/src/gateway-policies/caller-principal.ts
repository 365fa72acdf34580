import { hash } from 'node:crypto';

/**
 * A gateway caller qualified by who vouched for it: what everything the gateway keeps per caller is
 * keyed on (per-caller cache entries, `scope: user` rate-limit buckets, usage of OIDC subjects and
 * services), and what `explain` computes those keys from. The gateway's identities
 * (services/gateway/src/auth/identity.ts) and the control plane's explanations both take their
 * principal from here, so the two always name a caller the same way.
 *
 * The ids alone share one namespace: a tenant's OIDC provider may issue any `sub` (a Clerk user's id,
 * a service's id, `anon-ip:<address>`), and a tenant names its services freely. So every principal
 * starts with the kind of caller (`clerk:`, `oidc:`, `svc:`, `key:`), and none starts with `anon-ip:`,
 * the namespace anonymous callers are counted in by address. An anonymous caller has no principal.
 *
 * Changing any of these formats moves every caller to new cache entries and rate-limit buckets.
 */

/** Who vouched for a user: Clerk (one issuer for every tenant) or the tenant's own OIDC provider. */
export type UserIssuer = 'clerk' | 'oidc';

/** A Clerk user (the session token's `sub`): `clerk:<sub>`. */
export function clerkUserPrincipal(sub: string): string {
  return `clerk:${sub}`;
}

/**
 * The issuer as it appears in an OIDC principal: the first 16 characters of the base64url SHA-256 of
 * the issuer text. Fixed length, since issuer text may contain ':'; and part of the principal because
 * the subjects of a provider the tenant replaced are other people.
 */
export function oidcIssuerDigest(issuer: string): string {
  return hash('sha256', issuer, 'base64url').slice(0, 16);
}

/** A subject of the tenant's OIDC provider `issuer`: `oidc:<issuer digest>:<sub>`. */
export function oidcUserPrincipal(issuer: string, sub: string): string {
  return `oidc:${oidcIssuerDigest(issuer)}:${sub}`;
}

/** A calling service (the `sub` of its service token, the service account's id): `svc:<id>`. */
export function servicePrincipal(serviceId: string): string {
  return `svc:${serviceId}`;
}

/** A caller with an API key: `key:<API key id>`. */
export function apiKeyPrincipal(apiKeyId: string): string {
  return `key:${apiKeyId}`;
}
