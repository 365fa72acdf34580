/** What the admin API reads of a Clerk token it verified, to decide whether it is a usable session. */
export interface VerifiedClerkToken {
  /** `sid`: every Clerk session token names its session. */
  sessionId: string | null | undefined;
  /** `sts` (v2): `pending` while the user still has sign-in tasks (e.g. choosing an organisation). */
  sessionStatus: string | null | undefined;
  /** `act`: an impersonation session's impersonator. */
  actor: unknown;
}

const NOT_A_SESSION_TOKEN =
  'not a session token (no sid): tokens of Clerk JWT templates are for the services they were made for';
const PENDING_SESSION =
  'a pending session (sts: pending): finish signing in (the tasks Clerk asks for) and send its new token';
const IMPERSONATION_SESSION =
  'an impersonation session (act claim): the admin API acts only for users signed in as themselves';

/**
 * Why a token Clerk verified is not a session the admin API acts for, or null when it is one.
 *
 * - No `sid`: a JWT template's token (signed with the same instance key; Clerk tags it with a `cat`
 *   header its SDK refuses, but older tokens and instances omitting the tag have none). It is not tied
 *   to a session, so it outlives sign-out and revocation, and may have been handed to a third party.
 * - `sts: pending`: the user has not finished signing in (Clerk's SDK treats it as signed out).
 * - `act`: an impersonation session would act with the impersonated user's rights, a platform
 *   admin's included, and every event would name that user as its actor.
 */
export function sessionRefusal(token: VerifiedClerkToken): string | null {
  if (typeof token.sessionId !== 'string' || token.sessionId === '') return NOT_A_SESSION_TOKEN;
  if (token.sessionStatus === 'pending') return PENDING_SESSION;
  if (token.actor) return IMPERSONATION_SESSION;
  return null;
}
