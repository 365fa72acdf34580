/** Who made a request, as established by the route's auth mode; forwarded to the origin as headers. */
export interface Identity {
  readonly kind: 'anonymous' | 'user' | 'api_key' | 'service';
  /** Clerk user id or the OIDC subject. */
  readonly userId?: string | undefined;
  readonly orgId?: string | undefined;
  readonly apiKeyId?: string | undefined;
  /** The calling service (`sub` of its service token). */
  readonly serviceId?: string | undefined;
  readonly scopes: readonly string[];
}

export const ANONYMOUS: Identity = Object.freeze({ kind: 'anonymous', scopes: Object.freeze([]) });

export type AuthResult =
  | { readonly ok: true; readonly identity: Identity }
  | {
      readonly ok: false;
      readonly status: 401 | 403 | 429;
      readonly code: string;
      readonly message: string;
      /** WWW-Authenticate value. */
      readonly challenge: string;
      /** Retry-After value (429 too_many_auth_failures). */
      readonly retryAfterSeconds?: number;
    };
