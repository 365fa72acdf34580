/** Written out here, not taken from the reader: a test of the reader must not share its mistakes. */
export const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 header: version 2, `command` (0 LOCAL, 1 PROXY), `familyAndTransport`, then `body` (addresses, TLVs). */
export function v2Header(command: number, familyAndTransport: number, body: Buffer): Buffer {
  const fixed = Buffer.alloc(4);
  fixed[0] = 0x20 | command;
  fixed[1] = familyAndTransport;
  fixed.writeUInt16BE(body.length, 2);
  return Buffer.concat([V2_SIGNATURE, fixed, body]);
}

/** A v2 header's IPv4 address block (AF_INET): source and destination addresses, then their ports. */
export function inet4Block(
  source: string,
  destination: string,
  sourcePort: number,
  destinationPort: number,
): Buffer {
  return Buffer.concat([
    Buffer.from(source.split('.').map(Number)),
    Buffer.from(destination.split('.').map(Number)),
    portsOf(sourcePort, destinationPort),
  ]);
}

/** A v2 header's IPv6 address block (AF_INET6), the addresses in hex, to port 443. */
export function inet6Block(source: string, destination: string, sourcePort: number): Buffer {
  return Buffer.concat([
    Buffer.from(source, 'hex'),
    Buffer.from(destination, 'hex'),
    portsOf(sourcePort, 443),
  ]);
}

function portsOf(sourcePort: number, destinationPort: number): Buffer {
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sourcePort, 0);
  ports.writeUInt16BE(destinationPort, 2);
  return ports;
}
