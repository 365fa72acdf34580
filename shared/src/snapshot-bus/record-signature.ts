import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { SettingsError } from '../settings/load-settings.js';
import { readSettingFile } from '../settings/setting-file.js';
import { HEADER_ENCODING, HEADER_VERSION, type SnapshotRecord } from './codec.js';

/**
 * End-to-end integrity of the snapshot topic: the snapshot projector signs every record it publishes
 * with an Ed25519 key, and gateways given the public keys apply only records signed by one of them.
 * Transport security (SASL/TLS) says who may write the topic; this says which records a replica trusts
 * even when some principal allowed to write it is not the projector.
 *
 * The signature covers the tenant id (the record key), the version header, the encoding the decoder
 * will apply and the value bytes as sent (gzipped or not), or a tombstone marker instead of the last
 * two: each field length-prefixed after a fixed context string, so no two records share a payload.
 */

export const HEADER_SIGNATURE = 've-signature';
export const HEADER_KEY_ID = 've-key-id';

const CONTEXT = Buffer.from('vantageedge snapshot record v1\0', 'utf8');
const TOMBSTONE = 0;
const VALUE = 1;
const KEY_ID = /^[0-9a-f]{16}$/;

/** Why a record was refused; also the `reason` label of the gateways' counter. */
export type SignatureRefusal = 'missing' | 'unknown_key' | 'invalid';

export interface RecordRefusal {
  reason: SignatureRefusal;
  /** For the log line: never the value. */
  detail: string;
}

/** What the signer needs of a record (an encoded record before it is sent). */
export interface SignableRecord {
  key: string;
  value: Buffer | null;
  headers: Record<string, string | undefined>;
}

/** The bytes signed for a record. */
export function signedPayload(record: Pick<SnapshotRecord, 'key' | 'value' | 'headers'>): Buffer {
  const parts: Buffer[] = [CONTEXT];
  const field = (bytes: Buffer): void => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  };
  field(Buffer.from(record.key ?? '', 'utf8'));
  field(Buffer.from(record.headers[HEADER_VERSION] ?? '', 'utf8'));
  if (record.value === null) {
    parts.push(Buffer.of(TOMBSTONE));
  } else {
    parts.push(Buffer.of(VALUE));
    // What the decoder reads a value without the header as.
    field(Buffer.from(record.headers[HEADER_ENCODING] ?? 'json', 'utf8'));
    field(record.value);
  }
  return Buffer.concat(parts);
}

/** A public key's id: the first 16 hex digits of the SHA-256 of its SubjectPublicKeyInfo (DER). */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export interface SnapshotSigner {
  readonly keyId: string;
  readonly publicKey: KeyObject;
  /** Adds the signature and key id headers to the record. */
  sign(record: SignableRecord): void;
}

export function createSnapshotSigner(privateKey: KeyObject): SnapshotSigner {
  const publicKey = createPublicKey(privateKey);
  const keyId = keyIdOf(publicKey);
  return {
    keyId,
    publicKey,
    sign(record) {
      record.headers[HEADER_KEY_ID] = keyId;
      record.headers[HEADER_SIGNATURE] = sign(null, signedPayload(record), privateKey).toString('base64');
    },
  };
}

export interface SnapshotVerifier {
  /** The ids of the keys accepted. */
  readonly keyIds: readonly string[];
  /** Why the record is not to be applied; undefined when one of the keys signed it. */
  refusal(record: SnapshotRecord): RecordRefusal | undefined;
}

export function createSnapshotVerifier(publicKeys: readonly KeyObject[]): SnapshotVerifier {
  const byId = new Map(publicKeys.map((key) => [keyIdOf(key), key]));
  return {
    keyIds: [...byId.keys()],
    refusal(record) {
      const signature = record.headers[HEADER_SIGNATURE];
      const keyId = record.headers[HEADER_KEY_ID];
      if (signature === undefined || keyId === undefined) {
        return { reason: 'missing', detail: `record has no ${HEADER_SIGNATURE} or ${HEADER_KEY_ID} header` };
      }
      const key = byId.get(keyId);
      if (!key) {
        return {
          reason: 'unknown_key',
          detail: KEY_ID.test(keyId)
            ? `record is signed by key ${keyId}, not one of the keys accepted`
            : `record has a malformed ${HEADER_KEY_ID} header`,
        };
      }
      // An Ed25519 signature is 64 bytes: 88 characters of base64.
      const bytes = signature.length === 88 ? Buffer.from(signature, 'base64') : undefined;
      if (bytes?.length !== 64 || !verify(null, signedPayload(record), key, bytes)) {
        return { reason: 'invalid', detail: `record's signature does not match its content (key ${keyId})` };
      }
      return undefined;
    },
  };
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** `SNAPSHOT_SIGNING_KEY_FILE`: the projector's Ed25519 private key (PEM). */
export function loadSnapshotSigner(file: string, setting = 'SNAPSHOT_SIGNING_KEY_FILE'): SnapshotSigner {
  const text = readSettingFile(setting, file);
  const blocks = [...text.matchAll(PEM_BLOCK)];
  const problem = (issue: string) => new SettingsError([{ setting, issue: `${file} ${issue}` }]);
  if (blocks.length !== 1) throw problem('must hold exactly one PEM private key');
  if (!blocks[0]![1]!.includes('PRIVATE KEY')) {
    throw problem(`holds a ${blocks[0]![1]}, not a private key`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(blocks[0]![0]);
  } catch (error) {
    throw problem(`is not a readable private key: ${(error as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw problem(`holds a ${key.asymmetricKeyType ?? 'non-asymmetric'} key, not an Ed25519 one`);
  }
  return createSnapshotSigner(key);
}

/**
 * `SNAPSHOT_VERIFY_KEYS_FILE`: one or more Ed25519 public keys (PEM blocks one after another). A
 * private key is refused: a replica needs none, and must not hold what could sign configuration.
 */
export function loadSnapshotVerifier(file: string, setting = 'SNAPSHOT_VERIFY_KEYS_FILE'): SnapshotVerifier {
  const text = readSettingFile(setting, file);
  const blocks = [...text.matchAll(PEM_BLOCK)];
  const problem = (issue: string) => new SettingsError([{ setting, issue: `${file} ${issue}` }]);
  if (blocks.length === 0) throw problem('holds no PEM public key');
  const keys = blocks.map(([pem, label], index) => {
    if (label!.includes('PRIVATE')) {
      throw problem(`holds a private key (block ${index + 1}); give the public keys only`);
    }
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch (error) {
      throw problem(`block ${index + 1} is not a readable public key: ${(error as Error).message}`);
    }
    if (key.asymmetricKeyType !== 'ed25519') {
      throw problem(
        `block ${index + 1} is a ${key.asymmetricKeyType ?? 'non-asymmetric'} key, not an Ed25519 one`,
      );
    }
    return key;
  });
  return createSnapshotVerifier(keys);
}
