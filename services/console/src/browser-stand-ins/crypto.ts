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
 * An origin's `tls.ca_certificates` are parsed with X509Certificate by the request schemas. The
 * browser cannot parse X.509, so, as with createPublicKey, every PEM block the schema lets through
 * reads as an unexpired RSA CA certificate and the control plane parses it on write (a bad one is a
 * 400 naming `ca_certificates`).
 */
export class X509Certificate {
  readonly ca = true;
  readonly subject = '';
  readonly subjectAltName = undefined;
  readonly validTo = 'Dec 31 23:59:59 9999 GMT';
  readonly publicKey = { asymmetricKeyType: 'rsa', asymmetricKeyDetails: {} };
}
