import { type ClerkLike, clerkTokenSource } from './clerk.js';
import { isExpired, readTokenClaims, type TokenClaims } from './token-claims.js';

/**
 * Who is signed in to the console, and how the API client gets a token:
 *   - `token`: a session token pasted by the user, or issued by the development sign-in of `make dev`
 *     (kept in sessionStorage: one browser tab, gone when it closes);
 *   - `clerk`: Clerk's hosted sign-in; Clerk keeps and refreshes the token.
 */
export type Session =
  | { kind: 'token'; source: 'pasted' | 'development'; token: string; claims: TokenClaims }
  | { kind: 'clerk'; clerk: ClerkLike; claims: TokenClaims };

const STORAGE_KEY = 'vantageedge.console.session';

interface StoredSession {
  source: 'pasted' | 'development';
  token: string;
}

export function tokenSession(
  token: string,
  source: 'pasted' | 'development',
): { ok: true; session: Session } | { ok: false; issue: string } {
  const trimmed = token.trim().replace(/^Bearer\s+/i, '');
  const read = readTokenClaims(trimmed);
  if (!read.ok) return read;
  if (isExpired(read.claims)) return { ok: false, issue: 'has expired: get a new one' };
  return { ok: true, session: { kind: 'token', source, token: trimmed, claims: read.claims } };
}

export function saveSession(session: Session): void {
  if (session.kind !== 'token') return;
  const stored: StoredSession = { source: session.source, token: session.token };
  window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(stored));
}

export function restoreSession(): Session | null {
  const text = window.sessionStorage.getItem(STORAGE_KEY);
  if (!text) return null;
  try {
    const stored = JSON.parse(text) as StoredSession;
    const result = tokenSession(stored.token, stored.source);
    if (result.ok) return result.session;
  } catch {
    // a malformed entry is dropped below
  }
  forgetSession();
  return null;
}

export function forgetSession(): void {
  window.sessionStorage.removeItem(STORAGE_KEY);
}

export function tokenSourceOf(session: Session): () => Promise<string | null> {
  if (session.kind === 'clerk') return clerkTokenSource(session.clerk);
  return () => Promise.resolve(session.token);
}
