import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_CLOSE, extendedConnect, opened, openSession } from '../testing/http2-websockets.js';
import { connectRaw, within } from '../testing/raw-connections.js';
import {
  type RawOriginBehindTlsGateway,
  startRawOriginBehindTlsGateway,
} from '../testing/raw-origin-behind-tls-gateway.js';
import { onRequestHeads, switchingProtocols } from '../testing/request-heads.js';

/**
 * A client that sends its close frame, then ends its side of the connection (a FIN; END_STREAM over
 * HTTP/2) and reads on until its origin's answer: the origin's last message and its close frame reach it,
 * whichever listener it came through. Regression test: over TLS the gateway ended the client's connection
 * as soon as the client's FIN came (node's TLS sockets are not half-open), and what the origin sent after
 * was dropped: the client saw an abnormal closure (1006) instead of the origin's 1000.
 */
/** The origin's last message (`bye`) and its close frame (1000), unmasked. */
const ORIGIN_GOODBYE = Buffer.from([0x81, 3, 0x62, 0x79, 0x65, 0x88, 2, 0x03, 0xe8]);
/** How long the origin takes to answer the client's end (a busy origin finishing its work). */
const ORIGIN_ANSWER_MS = 300;

let setup: RawOriginBehindTlsGateway;

beforeAll(async () => {
  // Answers the client's end, a moment later, with its last message and close frame, then ends its own.
  setup = await startRawOriginBehindTlsGateway(
    'half-closed',
    (socket) => {
      onRequestHeads(socket, (head) => socket.write(switchingProtocols(head)));
      socket.once('end', () => setTimeout(() => socket.end(ORIGIN_GOODBYE), ORIGIN_ANSWER_MS));
    },
    { allowHalfOpen: true },
  );
});

afterAll(async () => {
  await setup?.close();
});

describe('a client that ends its side after its close frame', () => {
  it.each(['plain', 'tls'] as const)(
    'HTTP/1.1 (%s): the origin’s last message and close frame still reach it',
    async (kind) => {
      const { gateway, host } = setup;
      const port = kind === 'plain' ? gateway.gateway.trafficPort : (gateway.gateway.tlsPort as number);
      const client = await connectRaw(kind, port, host);
      // Half-open: it reads on after its own end.
      client.socket.allowHalfOpen = true;
      client.socket.setEncoding('latin1');
      client.socket.write(
        `GET /chat HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      await within(
        new Promise<void>((resolve) => {
          const check = () =>
            client.received().includes('\r\n\r\n') ? resolve() : client.socket.once('data', check);
          check();
        }),
        5_000,
        'the 101',
      );
      client.socket.end(CLIENT_CLOSE);
      await within(client.closed, 5_000, 'the connection closed');
      const received = Buffer.from(client.received(), 'latin1');
      expect(received.subarray(received.indexOf('\r\n\r\n') + 4)).toEqual(ORIGIN_GOODBYE);
    },
  );

  it('HTTP/2: the origin’s last message and close frame still reach it', async () => {
    const { session } = await openSession(setup.gateway.tlsUrl);
    setup.sessions.push(session);
    const socket = opened(await extendedConnect(session, '/chat', { ':authority': setup.host }));
    socket.stream.end(CLIENT_CLOSE);
    expect(await socket.nextText()).toBe('bye');
    expect(await socket.closeFrame()).toEqual({ code: 1000, reason: '' });
  });
});
