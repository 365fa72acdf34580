import { isIPv4, isIPv6 } from 'node:net';
import { canonicalAddress } from '@vantageedge/shared/net/ip-address';

/**
 * The PROXY protocol header a layer-4 load balancer (HAProxy, AWS NLB, Envoy) writes before a client's
 * bytes, version 1 (a text line) or 2 (binary), as HAProxy's specification describes them
 * (https://www.haproxy.org/download/3.0/doc/proxy-protocol.txt).
 */
export type ProxyHeaderReading =
  /** Every byte so far fits a header: read more. */
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'malformed'; readonly reason: string }
  /**
   * A whole header of `length` bytes. `source` is the client it names; none for a v2 LOCAL command (the
   * balancer's own connection, a health check), `PROXY UNKNOWN` and v2 addresses other than TCP over
   * IPv4/IPv6 (AF_UNIX, UNSPEC): the connection's own peer stands.
   */
  | { readonly kind: 'header'; readonly length: number; readonly source: ProxySource | undefined };

export interface ProxySource {
  /** Spelled as a socket reports it: dotted decimal (an IPv4-mapped IPv6 address too), compressed IPv6. */
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

/** A v1 line with its CRLF is at most 107 bytes (the specification's bound). */
export const V1_MAX_BYTES = 107;
/**
 * A v2 header with its TLVs. The length field allows 65,551 bytes; what balancers send (addresses, an
 * AWS VPC endpoint id, an Azure link id, TLS details) fits in a few hundred, so a longer one is refused
 * before it is buffered.
 */
export const V2_MAX_BYTES = 4096;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_BYTES = 16;

/** Reads the header at the start of `bytes` (all a connection has sent so far). */
export function readProxyHeader(bytes: Buffer): ProxyHeaderReading {
  if (startsLike(bytes, V2_SIGNATURE)) {
    return bytes.length < V2_SIGNATURE.length ? INCOMPLETE : readV2(bytes);
  }
  if (startsLike(bytes, V1_PREFIX)) {
    return bytes.length < V1_PREFIX.length ? INCOMPLETE : readV1(bytes);
  }
  return malformed('no PROXY protocol signature');
}

const INCOMPLETE: ProxyHeaderReading = { kind: 'incomplete' };
const malformed = (reason: string): ProxyHeaderReading => ({ kind: 'malformed', reason });

/** `bytes` and `prefix` agree on their common length. */
function startsLike(bytes: Buffer, prefix: Buffer): boolean {
  const compared = Math.min(bytes.length, prefix.length);
  return bytes.subarray(0, compared).equals(prefix.subarray(0, compared));
}

function readV1(bytes: Buffer): ProxyHeaderReading {
  const lineFeed = bytes.subarray(0, V1_MAX_BYTES).indexOf(0x0a);
  if (lineFeed < 0)
    return bytes.length >= V1_MAX_BYTES ? malformed('v1 line longer than 107 bytes') : INCOMPLETE;
  if (lineFeed === 0 || bytes[lineFeed - 1] !== 0x0d) return malformed('v1 line not ended by CRLF');
  const fields = bytes.toString('latin1', 0, lineFeed - 1).split(' ');
  if (fields[1] === 'UNKNOWN') return { kind: 'header', length: lineFeed + 1, source: undefined };
  if (fields.length !== 6) return malformed('v1 line without 6 fields');
  const [, protocol, sourceAddress, destinationAddress, sourcePort, destinationPort] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const isFamily = protocol === 'TCP4' ? isIPv4 : protocol === 'TCP6' ? isIPv6 : undefined;
  if (isFamily === undefined) return malformed('v1 protocol neither TCP4, TCP6 nor UNKNOWN');
  if (!isFamily(sourceAddress) || !isFamily(destinationAddress))
    return malformed('v1 address not of its protocol');
  const port = v1Port(sourcePort);
  if (port === undefined || v1Port(destinationPort) === undefined) return malformed('v1 port not 0-65535');
  return { kind: 'header', length: lineFeed + 1, source: sourceOf(sourceAddress, port) };
}

/** A port as v1 writes it: decimal, no leading zero. */
function v1Port(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65_535 ? port : undefined;
}

function readV2(bytes: Buffer): ProxyHeaderReading {
  if (bytes.length < V2_FIXED_BYTES) return INCOMPLETE;
  const versionAndCommand = bytes[12]!;
  if (versionAndCommand >> 4 !== 2) return malformed('v2 version not 2');
  const command = versionAndCommand & 0x0f;
  if (command > 1) return malformed('v2 command neither LOCAL nor PROXY');
  const length = V2_FIXED_BYTES + bytes.readUInt16BE(14);
  if (length > V2_MAX_BYTES) return malformed(`v2 header longer than ${V2_MAX_BYTES} bytes`);
  if (bytes.length < length) return INCOMPLETE;
  // LOCAL: the balancer speaks for itself; the addresses (if any) and TLVs are skipped.
  if (command === 0) return { kind: 'header', length, source: undefined };
  const family = bytes[13]! >> 4;
  const transport = bytes[13]! & 0x0f;
  if (family > 3 || transport > 2) return malformed('v2 unknown address family or transport');
  const addresses = bytes.subarray(V2_FIXED_BYTES, length);
  // Only a stream over IPv4 or IPv6 names a client address; AF_UNIX and UNSPEC leave the peer as it is.
  if (transport !== 1 || (family !== 1 && family !== 2)) return { kind: 'header', length, source: undefined };
  const addressBytes = family === 1 ? 4 : 16;
  if (addresses.length < 2 * addressBytes + 4) return malformed('v2 address block shorter than its family');
  const source =
    family === 1 ? Array.from(addresses.subarray(0, 4)).join('.') : ipv6Text(addresses.subarray(0, 16));
  return { kind: 'header', length, source: sourceOf(source, addresses.readUInt16BE(2 * addressBytes)) };
}

function ipv6Text(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}

function sourceOf(address: string, port: number): ProxySource | undefined {
  const canonical = canonicalAddress(address);
  if (canonical === undefined) return undefined;
  return { address: canonical.address, port, family: canonical.family === 'ipv4' ? 'IPv4' : 'IPv6' };
}
