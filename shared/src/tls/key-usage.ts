import type { X509Certificate } from 'node:crypto';

/**
 * A certificate's key usage bits (RFC 5280 4.2.1.3), which node:crypto does not expose
 * (X509Certificate.keyUsage is the EXTENDED key usage). Read from the certificate's DER: the
 * extension's place is fixed (TBSCertificate's [3] extensions), so a few steps of DER reading find it.
 */
export const KEY_USAGES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsage = (typeof KEY_USAGES)[number];

const SEQUENCE = 0x30;
const EXTENSIONS = 0xa3;
const OBJECT_IDENTIFIER = 0x06;
const BOOLEAN = 0x01;
const OCTET_STRING = 0x04;
const BIT_STRING = 0x03;
/**
 * 2.5.29.15, DER-encoded. Not a Buffer: the console's browser bundle loads this module (with the
 * request schemas) and has no Buffer.
 */
const KEY_USAGE_OID = Uint8Array.of(0x55, 0x1d, 0x0f);

/**
 * The usages a certificate's key usage extension sets, or undefined when it has none (any usage). An
 * extension that is not a well-formed BIT STRING sets none: OpenSSL refuses such a certificate.
 */
export function keyUsagesOf(certificate: X509Certificate): ReadonlySet<KeyUsage> | undefined {
  const value = keyUsageExtensionValue(certificate.raw);
  if (value === undefined) return undefined;
  const usages = new Set<KeyUsage>();
  const bits = element(value, 0);
  const unusedBits = bits?.content[0];
  if (bits?.tag !== BIT_STRING || unusedBits === undefined || unusedBits > 7) return usages;
  const lastByte = bits.content.length - 1;
  KEY_USAGES.forEach((usage, bit) => {
    const at = 1 + (bit >> 3);
    const byte = bits.content[at];
    // The last byte's unused (padding) bits grant nothing: OpenSSL clears them when it decodes.
    const meaningful = at === lastByte ? (0xff << unusedBits) & 0xff : 0xff;
    if (byte !== undefined && (byte & meaningful & (0x80 >> (bit & 7))) !== 0) usages.add(usage);
  });
  return usages;
}

/**
 * The DER value (the OCTET STRING's content) of the key usage extension, if the certificate has one
 * (empty when the extension holds no OCTET STRING).
 */
function keyUsageExtensionValue(der: Buffer): Buffer | undefined {
  const certificate = element(der, 0);
  if (certificate?.tag !== SEQUENCE) return undefined;
  const tbs = element(certificate.content, 0);
  if (tbs?.tag !== SEQUENCE) return undefined;
  const extensions = children(tbs.content).find((field) => field.tag === EXTENSIONS);
  const list = extensions === undefined ? undefined : element(extensions.content, 0);
  if (list?.tag !== SEQUENCE) return undefined;
  for (const extension of children(list.content)) {
    const [id, ...rest] = children(extension.content);
    if (id?.tag !== OBJECT_IDENTIFIER || !id.content.equals(KEY_USAGE_OID)) continue;
    const value = rest.find((field) => field.tag !== BOOLEAN);
    return value?.tag === OCTET_STRING ? value.content : Buffer.alloc(0);
  }
  return undefined;
}

interface Element {
  readonly tag: number;
  readonly content: Buffer;
  /** Offset just past the element. */
  readonly end: number;
}

function children(content: Buffer): Element[] {
  const found: Element[] = [];
  for (let at = 0; at < content.length; ) {
    const child = element(content, at);
    if (child === undefined) break;
    found.push(child);
    at = child.end;
  }
  return found;
}

/** The DER element at `at` (single-byte tags, definite lengths: all DER has), or undefined past the data. */
function element(data: Buffer, at: number): Element | undefined {
  const tag = data[at];
  let length = data[at + 1];
  if (tag === undefined || length === undefined) return undefined;
  let start = at + 2;
  if (length & 0x80) {
    const lengthBytes = length & 0x7f;
    if (lengthBytes === 0 || lengthBytes > 4 || start + lengthBytes > data.length) return undefined;
    length = 0;
    for (let i = 0; i < lengthBytes; i++) length = length * 256 + data[start + i]!;
    start += lengthBytes;
  }
  const end = start + length;
  if (end > data.length) return undefined;
  return { tag, content: data.subarray(start, end), end };
}
