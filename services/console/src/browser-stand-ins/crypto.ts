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
export const createPrivateKey = (..._args: unknown[]): never => serverOnly('createPrivateKey');
export const randomBytes = (..._args: unknown[]): never => serverOnly('randomBytes');

/**
 * An origin's tls.ca_certificates in the console: the request schema checks the PEM's shape (certificate
 * blocks only, no private key, at most 10) and this stand-in takes each block for a valid CA certificate
 * with an accepted key. What the certificates really say (a CA, within validity, its key) is left to the
 * control plane, which parses them with Node on every write: a bad one is a 400 at tls.ca_certificates,
 * shown next to the field.
 */
export class X509Certificate {
  readonly ca = true;
  readonly subject = '';
  readonly validFrom = new Date(0).toUTCString();
  readonly validTo = new Date(8.64e15).toUTCString();
  readonly validFromDate = new Date(0);
  readonly validToDate = new Date(8.64e15);
  readonly publicKey = { asymmetricKeyType: 'ec', asymmetricKeyDetails: { namedCurve: 'prime256v1' } };
  readonly keyUsage = undefined;
}
