import { useCallback, useMemo, useState } from 'preact/hooks';
import { ApiClient } from './api/client.js';
import { ApiContext } from './api/context.js';
import { signOutOfClerk } from './auth/clerk.js';
import { forgetSession, restoreSession, type Session, saveSession, tokenSourceOf } from './auth/session.js';
import type { ConsoleSettings } from './console-settings.js';
import { SignIn } from './pages/sign-in.js';
import { TenantPage } from './pages/tenant-page.js';
import { TenantsPage } from './pages/tenants-page.js';
import { hrefOf, useLocation } from './router.js';

export function App({ settings }: { settings: ConsoleSettings }) {
  const [session, setSession] = useState<Session | null>(() => restoreSession());
  const [notice, setNotice] = useState<string | null>(null);
  const location = useLocation();

  const signIn = useCallback((next: Session) => {
    saveSession(next);
    setNotice(null);
    setSession(next);
  }, []);
  const signOut = useCallback(
    (why: string | null) => {
      forgetSession();
      if (session?.kind === 'clerk') signOutOfClerk(session.clerk);
      setNotice(why);
      setSession(null);
    },
    [session],
  );
  const api = useMemo(
    () =>
      session
        ? new ApiClient(tokenSourceOf(session), (problem) =>
            signOut(
              problem.code === 'session_ended'
                ? 'Your Clerk session has ended (expired, or signed out elsewhere): sign in again.'
                : 'The control plane did not accept the session token (expired or not valid here): sign in again.',
            ),
          )
        : null,
    [session, signOut],
  );

  if (!session || !api) return <SignIn settings={settings} notice={notice} onSignedIn={signIn} />;
  return (
    <ApiContext.Provider value={api}>
      <header class="top">
        <a class="brand" href={hrefOf({ page: 'tenants' })}>
          VantageEdge
        </a>
        <span class="who" id="signed-in-as">
          {session.claims.userId}
          {session.kind === 'token' && session.source === 'development' && ' (development)'}
        </span>
        <button type="button" onClick={() => signOut(null)}>
          Sign out
        </button>
      </header>
      <main>
        {location.page === 'tenants' && <TenantsPage />}
        {/* Keyed by tenant: another tenant's page starts afresh, never with the previous tenant's
            forms, lists or route being edited (which a save would write into the new one). */}
        {location.page === 'tenant' && (
          <TenantPage key={location.tenantId} tenantId={location.tenantId} tab={location.tab} />
        )}
        {location.page === 'not-found' && (
          <p>
            No console page at <code>{location.path}</code>. <a href={hrefOf({ page: 'tenants' })}>Tenants</a>
          </p>
        )}
      </main>
    </ApiContext.Provider>
  );
}
