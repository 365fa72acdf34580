/**
 * `node:crypto` in the browser build, for the one check of the request schemas that needs it: a
 * tenant's service-account keys must load as public keys. The console cannot load a JWK the way Node
 * does, so it accepts every key shape the schema allows and leaves that check to the control plane,
 * which runs it again on every write (a bad key is a 400 naming it).
 */
export type JsonWebKey = Record<string, unknown>;

export function createPublicKey(_options: unknown): { type: 'public' } {
  return { type: 'public' };
}
