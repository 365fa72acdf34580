/**
 * The `cat` header values of Clerk's session tokens: its session-token category and the category it
 * tells SDKs to ignore. Tokens minted before Clerk tagged its tokens carry none.
 */
const SESSION_TOKEN_CATEGORIES: ReadonlySet<unknown> = new Set(['cl_B7d4PD111AAA', 'cl_I7d4PD111III']);

const NOT_A_SESSION_TOKEN =
  'not a session token: tokens of Clerk JWT templates (no sid) are for the services they were made for';
const PENDING_SESSION =
  'a pending session (sts: pending): finish signing in (the tasks Clerk asks for) and send its new token';

/**
 * Why a token Clerk's key verified is not a signed-in user's session, or null when it is one.
 *
 * - Another `cat` than a session token's, or no `sid`: a JWT template's token (Hasura, Supabase…),
 *   signed with the same instance key. Clerk tags those with the template category, but older tokens
 *   and instances omitting the tag have none, so the missing `sid` decides too. Such a token is tied to
 *   no session: it outlives sign-out and revocation (a template's lifetime may be years), may sit with
 *   a third party, and carries whatever claims the template copies (an org id and role among them).
 * - `sts: pending`: the user has not finished signing in (Clerk's SDKs treat it as signed out).
 */
export function clerkSessionRefusal(
  category: unknown,
  payload: Readonly<Record<string, unknown>>,
): string | null {
  if (category !== undefined && !SESSION_TOKEN_CATEGORIES.has(category)) return NOT_A_SESSION_TOKEN;
  const sessionId = payload['sid'];
  if (typeof sessionId !== 'string' || sessionId === '') return NOT_A_SESSION_TOKEN;
  if (payload['sts'] === 'pending') return PENDING_SESSION;
  return null;
}
