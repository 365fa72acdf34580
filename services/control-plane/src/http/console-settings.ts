/**
 * What the console learns from the control plane at GET /console/config.json: which sign-ins it may
 * offer. Nothing in it is secret (a Clerk publishable key is public by design).
 */
export interface ConsoleSettings {
  /** The development sign-in of `make dev` (VANTAGEEDGE_DEV_MODE and a development token issuer). */
  dev_sign_in: boolean;
  /** Clerk's hosted sign-in, when CLERK_PUBLISHABLE_KEY is configured. */
  clerk: { publishable_key: string; script_url: string } | null;
}

/** The Clerk Frontend API host a publishable key names: `pk_live_<base64("clerk.example.com$")>`. */
export function clerkFrontendApi(publishableKey: string): string | null {
  const match = /^pk_(?:test|live)_([A-Za-z0-9+/=_-]+)$/.exec(publishableKey);
  if (!match) return null;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  if (!decoded.endsWith('$')) return null;
  const host = decoded.slice(0, -1);
  return /^[a-z0-9.-]+(?::\d{1,5})?$/i.test(host) ? host : null;
}

/**
 * ClerkJS as Clerk's own framework SDKs load it: from the instance's Frontend API (a major version
 * pinned), never bundled into the console or fetched from a general CDN.
 */
export function clerkScriptUrl(frontendApi: string): string {
  return `https://${frontendApi}/npm/@clerk/clerk-js@6/dist/clerk.browser.js`;
}

export function consoleSettings(options: {
  clerkPublishableKey: string | undefined;
  devSignIn: boolean;
}): ConsoleSettings {
  const frontendApi = options.clerkPublishableKey ? clerkFrontendApi(options.clerkPublishableKey) : null;
  return {
    dev_sign_in: options.devSignIn,
    clerk:
      options.clerkPublishableKey && frontendApi
        ? { publishable_key: options.clerkPublishableKey, script_url: clerkScriptUrl(frontendApi) }
        : null,
  };
}

/**
 * The console's Content-Security-Policy: its own scripts and the admin API (same origin), plus the
 * Clerk Frontend API when Clerk's hosted sign-in is on.
 */
export function consoleContentSecurityPolicy(settings: ConsoleSettings): string {
  const clerk = settings.clerk ? ` https://${new URL(settings.clerk.script_url).host}` : '';
  return [
    "default-src 'self'",
    `script-src 'self'${clerk}`,
    `connect-src 'self'${clerk}`,
    `img-src 'self' data:${settings.clerk ? ' https://img.clerk.com' : ''}`,
    "style-src 'self' 'unsafe-inline'",
    `frame-src${clerk || " 'none'"}`,
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}
