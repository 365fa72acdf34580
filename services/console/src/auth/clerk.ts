/**
 * Clerk's hosted sign-in, for a deployment with CLERK_PUBLISHABLE_KEY. ClerkJS is loaded from the
 * Clerk instance's own Frontend API (the host the publishable key names, as Clerk's framework SDKs
 * do), never bundled: the console only needs `load`, the signed-in user, `redirectToSignIn` (Clerk's
 * Account Portal) and `session.getToken()`, which refreshes the short-lived session token.
 */

interface ClerkSession {
  getToken(): Promise<string | null>;
}

export interface ClerkLike {
  load(): Promise<void>;
  user: { id: string } | null | undefined;
  session: ClerkSession | null | undefined;
  redirectToSignIn(options?: { signInFallbackRedirectUrl?: string }): Promise<unknown>;
  signOut(options?: { redirectUrl?: string }): Promise<void>;
}

declare global {
  interface Window {
    Clerk?: ClerkLike;
  }
}

export interface ClerkSettings {
  publishable_key: string;
  /** https://<frontend api>/npm/@clerk/clerk-js@6/dist/clerk.browser.js */
  script_url: string;
}

let loading: Promise<ClerkLike> | undefined;

export function loadClerk(settings: ClerkSettings): Promise<ClerkLike> {
  loading ??= new Promise<ClerkLike>((resolve, reject) => {
    const script = document.createElement('script');
    script.src = settings.script_url;
    script.async = true;
    script.crossOrigin = 'anonymous';
    script.setAttribute('data-clerk-publishable-key', settings.publishable_key);
    script.addEventListener('load', () => {
      const clerk = window.Clerk;
      if (!clerk) reject(new Error('ClerkJS loaded but did not start'));
      else clerk.load().then(() => resolve(clerk), reject);
    });
    script.addEventListener('error', () =>
      reject(new Error(`could not load ClerkJS from ${settings.script_url}`)),
    );
    document.head.appendChild(script);
  });
  return loading;
}

/** The sign-out from Clerk this page asked for last, until Clerk has ended the session. */
let signingOut: Promise<void> | undefined;

/**
 * Ends the Clerk session, then has Clerk bring the browser back to this page (by default it goes to
 * the site's root, which the control plane does not serve). Ending it takes a round trip to Clerk,
 * and until then Clerk still reports the session as signed in: see `clerkSignedOut`.
 */
export function signOutOfClerk(clerk: ClerkLike): void {
  const ending = clerk.signOut({ redirectUrl: window.location.href }).catch((error: unknown) => {
    throw new Error(`Clerk did not end the session (${String(error)}): sign out again`);
  });
  signingOut = ending.finally(() => {
    if (signingOut === ending) signingOut = undefined;
  });
  // Its failure is shown by the sign-in page that waits for it (clerkSignedOut).
  signingOut.catch(() => {});
}

/**
 * Settles once a sign-out asked for on this page has ended the Clerk session (rejects if Clerk could
 * not end it): only then may the sign-in page take up a Clerk session it finds, or it would sign the
 * person who just signed out straight back in.
 */
export function clerkSignedOut(): Promise<void> {
  return signingOut ?? Promise.resolve();
}

/**
 * A token source backed by Clerk: every call asks Clerk, which refreshes the token when it expires;
 * null once the session has ended (expired, revoked, signed out elsewhere). Clerk failing to answer
 * (offline) is thrown, not null: the session may still be there.
 */
export function clerkTokenSource(clerk: ClerkLike): () => Promise<string | null> {
  return async () => (await clerk.session?.getToken()) || null;
}
