import { describe, expect, it } from 'vitest';
import { keyTypesAccepted } from './client-key-types.js';

describe('the certificate key types a client accepts', () => {
  it('reads them from the signature algorithms it shares with the gateway, as node names them', () => {
    expect(keyTypesAccepted(['ECDSA+SHA256', 'ECDSA+SHA384'])).toEqual(new Set(['ec']));
    expect(keyTypesAccepted(['RSA-PSS+SHA256', 'RSA+SHA256'])).toEqual(new Set(['rsa']));
    expect(keyTypesAccepted(['ECDSA+SHA256', 'Ed25519+UNDEF', 'RSA-PSS+SHA256'])).toEqual(
      new Set(['ec', 'rsa']),
    );
  });

  it('finds neither key type in algorithms of neither (Ed25519 only)', () => {
    expect(keyTypesAccepted(['Ed25519+UNDEF', 'Ed448+UNDEF'])).toEqual(new Set());
  });

  it('knows nothing of a client that named no signature algorithms (TLS 1.2 allows it)', () => {
    expect(keyTypesAccepted([])).toBeUndefined();
  });
});
