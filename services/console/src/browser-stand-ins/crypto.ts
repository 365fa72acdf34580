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

/**
 * Sealing certificate keys happens only on the server; the shared config schemas the console loads
 * import that module for its schema of a sealed key. In the browser these are never called.
 */
function serverOnly(name: string): never {
  throw new Error(`${name} runs only on the server`);
}
export const createCipheriv = (..._args: unknown[]): never => serverOnly('createCipheriv');
export const createDecipheriv = (..._args: unknown[]): never => serverOnly('createDecipheriv');
export const createHash = (..._args: unknown[]): never => serverOnly('createHash');
export const randomBytes = (..._args: unknown[]): never => serverOnly('randomBytes');
