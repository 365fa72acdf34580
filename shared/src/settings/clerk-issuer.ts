const PUBLISHABLE_KEY = /^pk_(test|live)_(?<encoded>[A-Za-z0-9+/=_-]+)$/;

/**
 * The issuer of the tokens of the Clerk instance a publishable key names. The key is
 * `pk_<test|live>_` + base64(`<Frontend API host>$`), and Clerk signs its session tokens with
 * `iss: https://<Frontend API host>`.
 */
export function issuerOfPublishableKey(publishableKey: string): string | undefined {
  const encoded = PUBLISHABLE_KEY.exec(publishableKey)?.groups?.['encoded'];
  if (encoded === undefined) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  if (!decoded.endsWith('$')) return undefined;
  const host = decoded.slice(0, -1);
  try {
    const issuer = new URL(`https://${host}`).origin;
    return issuer === `https://${host}` ? issuer : undefined;
  } catch {
    return undefined;
  }
}

/** The `iss` of the instance's tokens: CLERK_ISSUER, else the one CLERK_PUBLISHABLE_KEY names. */
export function clerkIssuerOf(settings: {
  CLERK_ISSUER?: string | undefined;
  CLERK_PUBLISHABLE_KEY?: string | undefined;
}): string | undefined {
  if (settings.CLERK_ISSUER) return settings.CLERK_ISSUER;
  return settings.CLERK_PUBLISHABLE_KEY ? issuerOfPublishableKey(settings.CLERK_PUBLISHABLE_KEY) : undefined;
}

/** The host an issuer or URL names (a bare host read as https://), lower case, without final dots. */
function hostNamed(value: string): string | undefined {
  const url = URL.parse(value) ?? URL.parse(`https://${value}`);
  if (url === null || url.hostname === '') return undefined;
  return url.hostname.toLowerCase().replace(/\.+$/, '');
}

/**
 * Whether an issuer or key-set URL is served by the platform's Clerk instance: it names the host of
 * the instance's issuer (its Frontend API), in any spelling, scheme, port or path. Clerk signs every
 * platform user's tokens there, so a tenant's OIDC provider that is this instance would take them as
 * its own users' tokens, and its origin would receive them.
 */
export function namesClerkInstance(value: string, clerkIssuer: string): boolean {
  const host = hostNamed(value);
  return host !== undefined && host === hostNamed(clerkIssuer);
}
