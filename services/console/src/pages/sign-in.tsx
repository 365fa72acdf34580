import { useEffect, useState } from 'preact/hooks';
import { clerkSignedOut, loadClerk } from '../auth/clerk.js';
import { type Session, tokenSession } from '../auth/session.js';
import { readTokenClaims } from '../auth/token-claims.js';
import { type ConsoleSettings, requestDevSession } from '../console-settings.js';
import { ErrorNotice } from '../ui/components.js';

/**
 * Three ways in: Clerk's hosted sign-in (CLERK_PUBLISHABLE_KEY), the development sign-in of `make dev`,
 * and a pasted session token (from Clerk's dashboard, `make dev-token`, or any Clerk-issued token).
 */
export function SignIn({
  settings,
  notice,
  onSignedIn,
}: {
  settings: ConsoleSettings;
  notice: string | null;
  onSignedIn: (session: Session) => void;
}) {
  const [token, setToken] = useState('');
  const [issue, setIssue] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  // Back from Clerk's Account Portal: a Clerk session may already be there (not the one being ended).
  useEffect(() => {
    if (!settings.clerk) return;
    Promise.all([loadClerk(settings.clerk), clerkSignedOut()]).then(
      async ([clerk]) => {
        if (!clerk.user || !clerk.session) return;
        const current = await clerk.session.getToken();
        const read = current ? readTokenClaims(current) : null;
        if (read?.ok) onSignedIn({ kind: 'clerk', clerk, claims: read.claims });
      },
      (failure: unknown) => setError(failure),
    );
  }, [settings.clerk, onSignedIn]);

  const usePasted = (event: Event) => {
    event.preventDefault();
    const result = tokenSession(token, 'pasted');
    if (!result.ok) setIssue(`The token ${result.issue}.`);
    else onSignedIn(result.session);
  };

  const useDevelopment = async () => {
    setBusy(true);
    setError(null);
    try {
      const issued = await requestDevSession();
      const result = tokenSession(issued.token, 'development');
      if (!result.ok) throw new Error(`the development token ${result.issue}`);
      onSignedIn(result.session);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  const useClerk = async () => {
    if (!settings.clerk) return;
    setBusy(true);
    try {
      const clerk = await loadClerk(settings.clerk);
      await clerk.redirectToSignIn({ signInFallbackRedirectUrl: window.location.href });
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };

  return (
    <main class="sign-in">
      <h1>VantageEdge console</h1>
      {notice && <div class="notice">{notice}</div>}
      <ErrorNotice error={error} />
      {settings.clerk && (
        <section>
          <h2>Sign in with Clerk</h2>
          <button type="button" class="primary" disabled={busy} onClick={useClerk}>
            Sign in
          </button>
        </section>
      )}
      {settings.dev_sign_in && (
        <section>
          <h2>Development sign-in</h2>
          <p class="muted">
            This control plane runs in development mode (<code>make dev</code>): sign in as its platform admin
            with a development token. Real deployments have no such button.
          </p>
          <button type="button" class="primary" id="dev-sign-in" disabled={busy} onClick={useDevelopment}>
            Sign in as the development admin
          </button>
        </section>
      )}
      <section>
        <h2>Paste a session token</h2>
        <form onSubmit={usePasted}>
          <label class={`field${issue ? ' invalid' : ''}`}>
            <span class="label">Clerk session token</span>
            <textarea
              name="token"
              rows={4}
              spellcheck={false}
              placeholder="eyJhbGciOiJSUzI1NiIs…"
              value={token}
              onInput={(event) => {
                setToken(event.currentTarget.value);
                setIssue(null);
              }}
            />
            {issue && <span class="field-issue">{issue}</span>}
          </label>
          <button type="submit" class="primary" disabled={token.trim() === ''}>
            Use this token
          </button>
        </form>
      </section>
    </main>
  );
}
