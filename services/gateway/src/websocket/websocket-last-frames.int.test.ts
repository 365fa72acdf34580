import { connect as connectHttp2 } from 'node:http2';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extendedConnect, opened } from '../testing/http2-websockets.js';
import { pause, within } from '../testing/raw-connections.js';
import {
  type RawOriginBehindTlsGateway,
  startRawOriginBehindTlsGateway,
} from '../testing/raw-origin-behind-tls-gateway.js';
import { onRequestHeads, switchingProtocols } from '../testing/request-heads.js';

/**
 * A side that ends its connection after its last frames (an origin saying goodbye: a last message, its
 * close frame, then its FIN, as RFC 6455 §7.1.1 has the server close the TCP connection first): what it
 * sent reaches the other side whole, however far behind on reading that side is. Regression test: the
 * other side's connection was destroyed the moment the origin's closed, and what still waited for it at
 * the gateway was dropped — an HTTP/2 client whose stream window was shut lost the last message and the
 * origin's close frame, its stream reset, and saw an abnormal closure (1006) instead of the origin's 1000.
 */
const FIRST_BYTES = 65_000;
const LAST_BYTES = 4_000;
/** The origin's close frame: 1000 with the reason `done`. */
const ORIGIN_CLOSE = Buffer.from([0x88, 6, 0x03, 0xe8, 0x64, 0x6f, 0x6e, 0x65]);

/** An unmasked frame (to a client) of `length` bytes (126..65535) with `opcode`. */
function originFrame(opcode: number, length: number, fill: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x80 | opcode, 126, length >> 8, length & 0xff]),
    Buffer.alloc(length, fill),
  ]);
}

let setup: RawOriginBehindTlsGateway;

beforeAll(async () => {
  // After its 101: a message nearly one HTTP/2 stream window long, then (a moment later, a read of its
  // own at the gateway) a last message and its close frame, and its end.
  setup = await startRawOriginBehindTlsGateway('last-frames', (socket) => {
    onRequestHeads(socket, (head) => {
      socket.write(switchingProtocols(head));
      socket.write(originFrame(0x2, FIRST_BYTES, 'f'));
      setTimeout(() => socket.end(Buffer.concat([originFrame(0x1, LAST_BYTES, 'l'), ORIGIN_CLOSE])), 200);
    });
  });
});

afterAll(async () => {
  await setup?.close();
});

describe('an origin that ends its connection after its last frames', () => {
  it('an HTTP/2 client that has not read them yet gets them whole, and the origin’s close frame', async () => {
    const session = connectHttp2(setup.gateway.tlsUrl, { rejectUnauthorized: false });
    setup.sessions.push(session);
    session.on('error', () => {});
    const socket = opened(await extendedConnect(session, '/goodbye', { ':authority': setup.host }));
    socket.stream.pause();
    const originSide = setup.originSockets.at(-1) as Socket;
    await within(
      new Promise((resolve) => originSide.once('close', resolve)),
      5_000,
      'the origin’s connection closes',
    );
    await pause(100);
    socket.stream.resume();
    const first = await socket.nextFrame();
    expect([first.opcode, first.payload.length]).toEqual([0x2, FIRST_BYTES]);
    const last = await socket.nextFrame();
    expect([last.opcode, last.payload.length]).toEqual([0x1, LAST_BYTES]);
    expect(await socket.closeFrame()).toEqual({ code: 1000, reason: 'done' });
  });
});
