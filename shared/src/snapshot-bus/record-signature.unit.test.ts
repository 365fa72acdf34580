import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { problemsOf } from '../testing/settings-problems.js';
import { encodeSnapshotMessage } from './codec.js';
import {
  createSnapshotSigner,
  createSnapshotVerifier,
  HEADER_KEY_ID,
  HEADER_SIGNATURE,
  loadSnapshotSigner,
  loadSnapshotVerifier,
} from './record-signature.js';
import { sampleSnapshot, snapshotMessage } from './testing.js';

const MAX = 1024 * 1024;
const TENANT = '6f1c0a52-3d7e-4b8a-9c21-5e4f3a2b1c0d';
const OTHER_TENANT = '0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b';
const ed25519 = () => generateKeyPairSync('ed25519');

function signedRecord(signer = createSnapshotSigner(ed25519().privateKey)) {
  const record = encodeSnapshotMessage(snapshotMessage(sampleSnapshot(TENANT, 7n)), MAX);
  signer.sign(record);
  return record;
}

describe('snapshot record signatures', () => {
  it('accepts a record signed by an accepted key, and by either key during a rotation', () => {
    const old = ed25519();
    const next = ed25519();
    const verifier = createSnapshotVerifier([old.publicKey, next.publicKey]);
    expect(verifier.refusal(signedRecord(createSnapshotSigner(old.privateKey)))).toBeUndefined();
    expect(verifier.refusal(signedRecord(createSnapshotSigner(next.privateKey)))).toBeUndefined();
  });

  it('refuses a record that is unsigned, signed by another key, or changed after signing', () => {
    const keys = ed25519();
    const signer = createSnapshotSigner(keys.privateKey);
    const verifier = createSnapshotVerifier([keys.publicKey]);
    const unsigned = encodeSnapshotMessage(snapshotMessage(sampleSnapshot(TENANT, 7n)), MAX);
    expect(verifier.refusal(unsigned)?.reason).toBe('missing');
    expect(verifier.refusal(signedRecord())?.reason).toBe('unknown_key');

    const changes: Array<(record: ReturnType<typeof signedRecord>) => void> = [
      (record) => {
        record.key = OTHER_TENANT;
      },
      (record) => {
        record.headers['ve-version'] = '8';
      },
      (record) => {
        record.headers['ve-encoding'] = 'gzip';
      },
      (record) => {
        record.value = Buffer.concat([record.value!, Buffer.from(' ')]);
      },
      // A snapshot's signature does not make a tombstone of the same tenant and version.
      (record) => {
        record.value = null;
      },
      (record) => {
        record.headers[HEADER_SIGNATURE] = 'x'.repeat(88);
      },
    ];
    for (const [index, change] of changes.entries()) {
      const record = signedRecord(signer);
      change(record);
      expect(verifier.refusal(record)?.reason, `change ${index}`).toBe('invalid');
    }
  });

  it('signs tombstones too: a forged one for a tenant is refused', () => {
    const keys = ed25519();
    const signer = createSnapshotSigner(keys.privateKey);
    const verifier = createSnapshotVerifier([keys.publicKey]);
    const tombstone = encodeSnapshotMessage({ kind: 'tombstone', tenantId: TENANT, version: 9n }, MAX);
    expect(verifier.refusal(tombstone)?.reason).toBe('missing');
    signer.sign(tombstone);
    expect(verifier.refusal(tombstone)).toBeUndefined();
    expect(verifier.refusal({ ...tombstone, key: OTHER_TENANT })?.reason).toBe('invalid');
  });

  it('never quotes an unknown key id that is not one (a topic writer chooses it)', () => {
    const keys = ed25519();
    const record = signedRecord(createSnapshotSigner(keys.privateKey));
    record.headers[HEADER_KEY_ID] = `${'\n'.repeat(3)}forged log line`;
    const refusal = createSnapshotVerifier([ed25519().publicKey]).refusal(record);
    expect(refusal).toMatchObject({ reason: 'unknown_key' });
    expect(refusal?.detail).not.toContain('forged');
  });
});

describe('key files', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 've-signing-keys-'));
  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const pems = () => {
    const keys = ed25519();
    return {
      privatePem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    };
  };

  it('loads a signing key and the public keys of a rotation, agreeing on the key id', () => {
    const first = pems();
    const second = pems();
    const signer = loadSnapshotSigner(write('signing.pem', first.privatePem));
    const verifier = loadSnapshotVerifier(write('verify.pem', `${second.publicPem}${first.publicPem}`));
    expect(verifier.keyIds).toHaveLength(2);
    expect(verifier.keyIds).toContain(signer.keyId);
    expect(verifier.refusal(signedRecord(signer))).toBeUndefined();
  });

  it('names the setting for an unreadable file, a private key given as a public one, and the reverse', () => {
    const { privatePem, publicPem } = pems();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    const missing = path.join(dir, 'missing.pem');
    const cases: Array<[() => unknown, string, RegExp]> = [
      [() => loadSnapshotVerifier(missing), 'SNAPSHOT_VERIFY_KEYS_FILE', /cannot be read .*ENOENT/],
      [() => loadSnapshotSigner(missing), 'SNAPSHOT_SIGNING_KEY_FILE', /cannot be read .*ENOENT/],
      [
        () => loadSnapshotVerifier(write('private-as-public.pem', `${publicPem}${privatePem}`)),
        'SNAPSHOT_VERIFY_KEYS_FILE',
        /private key \(block 2\)/,
      ],
      [
        () => loadSnapshotSigner(write('public-as-private.pem', publicPem)),
        'SNAPSHOT_SIGNING_KEY_FILE',
        /PUBLIC KEY, not a private key/,
      ],
      [
        () => loadSnapshotVerifier(write('rsa.pem', rsa)),
        'SNAPSHOT_VERIFY_KEYS_FILE',
        /rsa key, not an Ed25519/,
      ],
      [() => loadSnapshotVerifier(write('empty.pem', '')), 'SNAPSHOT_VERIFY_KEYS_FILE', /no PEM public key/],
    ];
    for (const [load, setting, issue] of cases) {
      expect(problemsOf(load), String(issue)).toEqual([{ setting, issue: expect.stringMatching(issue) }]);
    }
  });
});
