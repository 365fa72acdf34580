import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * When the gateway closes a proxied WebSocket (here: a snapshot removes its route), its close frame
 * must not land inside a frame it is relaying. Regression tests: an origin's 1 000-byte frame of which
 * 300 bytes had been relayed got the gateway's close frame as its next bytes, so the client read the
 * close frame as payload and the rest of the stream as garbage (and likewise toward the origin); then a
 * side halfway through a frame had its connection cut (1006) even when the sender finished the frame at
 * once: it never learnt why it was closed.
 */
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const SWITCHED =
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n';
const CLOSE_OPCODE_BYTE = 0x88;

/** A binary frame's header announcing `length` (126..65535) payload bytes, masked when to a server. */
function frameHeader(length: number, masked: boolean): Buffer {
  const header = Buffer.from([0x82, (masked ? 0x80 : 0) | 126, length >> 8, length & 0xff]);
  return masked ? Buffer.concat([header, Buffer.from([1, 2, 3, 4])]) : header;
}
/** A whole unmasked binary frame of `length` bytes (to a client). */
function wholeFrame(length: number): Buffer {
  return Buffer.concat([frameHeader(length, false), Buffer.alloc(length, 'w')]);
}

/** A 64-bit length header announcing `length` payload bytes, unmasked (to a client). */
function longFrameHeader(length: number): Buffer {
  const header = Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0, 0, 0]);
  header.writeBigUInt64BE(BigInt(length), 2);
  return header;
}

/** A peer's own close frame 1000 (normal closure), masked when to a server. */
function peerCloseFrame(masked: boolean): Buffer {
  if (!masked) return Buffer.from([0x88, 2, 0x03, 0xe8]);
  // Masking key 0: the payload reads as sent.
  return Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
}

/** The close frame at the start of `bytes`: its code and reason, unmasking it when masked. */
function readCloseFrame(bytes: Buffer): { code: number; reason: string; length: number } {
  expect(bytes[0]).toBe(CLOSE_OPCODE_BYTE);
  const masked = ((bytes[1] as number) & 0x80) !== 0;
  const payloadLength = (bytes[1] as number) & 0x7f;
  const payloadAt = masked ? 6 : 2;
  const payload = Buffer.from(bytes.subarray(payloadAt, payloadAt + payloadLength));
  if (masked)
    for (let i = 0; i < payload.length; i++)
      payload[i] = (payload[i] as number) ^ (bytes[2 + (i % 4)] as number);
  return {
    code: payload.readUInt16BE(0),
    reason: payload.subarray(2).toString('utf8'),
    length: payloadAt + payloadLength,
  };
}

/**
 * `side` sends `bytes` when the gateway's close frame reaches it (finishing a frame, then its own close).
 * Nothing else reaches it after the HTTP head, whose bytes are ASCII.
 */
function answerCloseWith(side: Peer, bytes: Buffer): void {
  const onData = (chunk: Buffer) => {
    if (!chunk.includes(CLOSE_OPCODE_BYTE)) return;
    side.socket.off('data', onData);
    side.socket.write(bytes);
  };
  side.socket.on('data', onData);
}

/** What one side of a connection received, byte for byte, and when it closed. */
interface Peer {
  socket: net.Socket;
  received(): Buffer;
  closed: Promise<void>;
  /** From now on it neither sends nor closes anything of its own (a stalled peer). */
  stall(): void;
}

function peer(socket: net.Socket): Peer {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  let stalled = false;
  // Ends its side when the gateway ends its own, as a WebSocket peer answers a closing handshake.
  socket.on('end', () => {
    if (!stalled) socket.end();
  });
  return {
    socket,
    received: () => Buffer.concat(chunks),
    closed: new Promise((resolve) => socket.once('close', () => resolve())),
    stall: () => {
      stalled = true;
    },
  };
}

/** What arrived after the HTTP head (the upgrade request at the origin, the 101 at the client). */
function afterHead(bytes: Buffer): Buffer {
  const end = bytes.indexOf('\r\n\r\n');
  return end < 0 ? Buffer.alloc(0) : bytes.subarray(end + 4);
}

let gateway: TestGateway;
let origin: net.Server;
let originPort: number;
const origins: Peer[] = [];

beforeAll(async () => {
  // Half-open: an origin's side stays open until it ends it (or stalls).
  origin = net.createServer({ allowHalfOpen: true }, (socket) => {
    const side = peer(socket);
    origins.push(side);
    socket.once('data', () => socket.write(SWITCHED));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  originPort = (origin.address() as net.AddressInfo).port;
  gateway = await startTestGateway({ GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0' });
});

afterAll(async () => {
  for (const side of origins) side.socket.destroy();
  await gateway?.close();
  await new Promise((resolve) => origin?.close(resolve));
});

/** A tenant with one catch-all route; `withdraw` applies its next version without that route. */
async function openThroughGateway(): Promise<{ client: Peer; origin: Peer; withdraw: () => void }> {
  const tenantId = randomUUID();
  const originId = randomUUID();
  const subdomain = `wsframes-${tenantId.slice(0, 8)}`;
  const version = (routeId: string, v: number) =>
    buildSnapshot({
      tenantId,
      version: v,
      subdomain,
      origins: [{ id: originId, targets: [`http://127.0.0.1:${originPort}`] }],
      routes: [{ id: routeId, origin_id: originId, path_pattern: '/*' }],
    });
  gateway.store.apply(version(randomUUID(), 1));
  const before = origins.length;
  const socket = net.connect(gateway.gateway.trafficPort, '127.0.0.1');
  const client = peer(socket);
  socket.write(
    `GET /live HTTP/1.1\r\nHost: ${subdomain}.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`,
  );
  await eventually('the switch', () => client.received().includes('\r\n\r\n'), 5_000);
  expect(client.received().toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
  const side = origins[before] as Peer;
  return { client, origin: side, withdraw: () => gateway.store.apply(version(randomUUID(), 2)) };
}

describe('the gateway closing a proxied WebSocket', () => {
  it('an origin that closes halfway through a frame: the client gets the origin’s bytes only, no close frame inside them', async () => {
    const { client, origin: side, withdraw } = await openThroughGateway();
    const halfFrame = Buffer.concat([frameHeader(1_000, false), Buffer.alloc(300, 'o')]);
    side.socket.write(halfFrame);
    await eventually('the half frame at the client', () => afterHead(client.received()).length === 300 + 4);
    withdraw();
    await within(client.closed, 5_000, 'the client connection closes');
    expect(afterHead(client.received())).toEqual(halfFrame);
    // Toward the origin the stream was on a boundary: it is told why, with a masked close frame.
    await within(side.closed, 5_000, 'the origin connection closes');
    expect(afterHead(side.received())[0]).toBe(CLOSE_OPCODE_BYTE);
  });

  it('a client that closes halfway through a frame: the origin gets the client’s bytes only, no close frame inside them', async () => {
    const { client, origin: side, withdraw } = await openThroughGateway();
    const halfFrame = Buffer.concat([frameHeader(1_000, true), Buffer.alloc(300, 'c')]);
    client.socket.write(halfFrame);
    await eventually('the half frame at the origin', () => afterHead(side.received()).length === 300 + 8);
    withdraw();
    await within(side.closed, 5_000, 'the origin connection closes');
    expect(afterHead(side.received())).toEqual(halfFrame);
    await within(client.closed, 5_000, 'the client connection closes');
    expect(afterHead(client.received())[0]).toBe(CLOSE_OPCODE_BYTE);
  });

  it('closes with a close frame right after a whole frame relayed in pieces', async () => {
    const { client, origin: side, withdraw } = await openThroughGateway();
    const frame = wholeFrame(1_000);
    side.socket.write(frame.subarray(0, 3));
    await eventually('the first piece', () => afterHead(client.received()).length === 3);
    side.socket.write(frame.subarray(3, 500));
    await eventually('the second piece', () => afterHead(client.received()).length === 500);
    side.socket.write(frame.subarray(500));
    await eventually('the whole frame', () => afterHead(client.received()).length === frame.length);
    withdraw();
    await within(client.closed, 5_000, 'the client connection closes');
    const after = afterHead(client.received());
    expect(after.subarray(0, frame.length)).toEqual(frame);
    expect(after[frame.length]).toBe(CLOSE_OPCODE_BYTE);
    expect(after.subarray(frame.length + 4).toString('utf8')).toBe('route removed');
  });

  it('lets the origin finish the frame it is halfway through, then sends the client its close frame', async () => {
    const { client, origin: side, withdraw } = await openThroughGateway();
    const frame = wholeFrame(1_000);
    side.socket.write(frame.subarray(0, 304));
    await eventually('the half frame at the client', () => afterHead(client.received()).length === 304);
    // As a WebSocket server does when told to close: the frame it is sending first, then its close frame.
    answerCloseWith(side, Buffer.concat([frame.subarray(304), peerCloseFrame(false)]));
    withdraw();
    await within(client.closed, 5_000, 'the client connection closes');
    const after = afterHead(client.received());
    expect(after.subarray(0, frame.length)).toEqual(frame);
    const close = readCloseFrame(after.subarray(frame.length));
    expect(close).toMatchObject({ code: 1001, reason: 'route removed' });
    // Nothing the origin sent after its frame (its own close frame) follows the gateway's.
    expect(after.length).toBe(frame.length + close.length);
  });

  it('lets the client finish the frame it is halfway through, then sends the origin its close frame', async () => {
    const { client, origin: side, withdraw } = await openThroughGateway();
    const frame = Buffer.concat([frameHeader(1_000, true), Buffer.alloc(1_000, 'c')]);
    client.socket.write(frame.subarray(0, 308));
    await eventually('the half frame at the origin', () => afterHead(side.received()).length === 308);
    answerCloseWith(client, Buffer.concat([frame.subarray(308), peerCloseFrame(true)]));
    withdraw();
    await within(side.closed, 5_000, 'the origin connection closes');
    const after = afterHead(side.received());
    expect(after.subarray(0, frame.length)).toEqual(frame);
    const close = readCloseFrame(after.subarray(frame.length));
    expect(close).toMatchObject({ code: 1001, reason: 'route removed' });
    expect(after.length).toBe(frame.length + close.length);
  });

  it('a client whose close frame the origin has not answered yet: the origin gets that close frame only, not a second one', async () => {
    const { client, origin: side, withdraw } = await openThroughGateway();
    client.socket.write(peerCloseFrame(true));
    await eventually('the client’s close frame at the origin', () => afterHead(side.received()).length === 8);
    withdraw();
    await within(side.closed, 5_000, 'the origin connection closes');
    expect(afterHead(side.received())).toEqual(peerCloseFrame(true));
    await within(client.closed, 5_000, 'the client connection closes');
    expect(readCloseFrame(afterHead(client.received()))).toMatchObject({
      code: 1001,
      reason: 'route removed',
    });
  });

  it('does not wait for the rest of a frame over 1 MiB: the client connection is cut after the bytes relayed', async () => {
    const { client, origin: side, withdraw } = await openThroughGateway();
    const length = 2 * 1024 * 1024;
    const started = Buffer.concat([longFrameHeader(length), Buffer.alloc(300, 'o')]);
    side.socket.write(started);
    await eventually(
      'the started frame at the client',
      () => afterHead(client.received()).length === started.length,
    );
    answerCloseWith(side, Buffer.alloc(length - 300, 'o'));
    withdraw();
    await within(client.closed, 5_000, 'the client connection closes');
    expect(afterHead(client.received())).toEqual(started);
  });

  it('cuts the client’s connection at the close grace when the origin stalls halfway through a frame', async () => {
    const { client, origin: side, withdraw } = await openThroughGateway();
    const halfFrame = Buffer.concat([frameHeader(1_000, false), Buffer.alloc(300, 'o')]);
    side.socket.write(halfFrame);
    await eventually('the half frame at the client', () => afterHead(client.received()).length === 304);
    side.stall();
    withdraw();
    await within(client.closed, 5_000, 'the client connection closes');
    expect(afterHead(client.received())).toEqual(halfFrame);
  });
});
