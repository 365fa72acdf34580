import type { Socket } from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { describe, expect, it } from 'vitest';
import { FrameRelay } from './frame-relay.js';
import { OpenWebSockets } from './open-websockets.js';
import { CLOSE_GRACE_MS, type ProxiedConnection } from './proxied-connection.js';
import type { WebSocketAdmission } from './websocket-admission.js';

/** An origin's last message and its close frame (1000). */
const LAST_MESSAGE = Buffer.concat([Buffer.from([0x81, 126, 0x10, 0x00]), Buffer.alloc(4096, 'l')]);
const ORIGIN_CLOSE = Buffer.from([0x88, 2, 0x03, 0xe8]);

/**
 * A client connection that is behind on reading: what is written to it waits at the gateway (its
 * writes unfinished) until `read()` takes it; ends when the gateway ends it and its peer answers.
 */
function slowClient() {
  const received: Buffer[] = [];
  const waiting: Array<() => void> = [];
  let ended = false;
  const client = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      waiting.push(() => {
        received.push(chunk);
        callback();
      });
    },
    final(callback) {
      ended = true;
      callback();
      // Its peer answers the end with its own.
      client.push(null);
    },
  });
  return {
    client,
    read: () => {
      for (const take of waiting.splice(0)) take();
    },
    received: () => Buffer.concat(received),
    ended: () => ended,
  };
}

function originSocket(): Socket {
  const upstream = new PassThrough() as unknown as Socket;
  upstream.setNoDelay = () => upstream;
  return upstream;
}

function proxied(client: Duplex, upstream: Socket): ProxiedConnection {
  const connection: ProxiedConnection = {
    client,
    upstream,
    toClient: new FrameRelay(upstream, client),
    toUpstream: new FrameRelay(client, upstream),
    closing: false,
    admission: { tenantId: 'tenant-a', routeId: 'route-a' } as WebSocketAdmission,
    admittedVersion: 1n,
    requestId: 'request-a',
    record: { answered() {}, switched() {}, ended() {} },
    ending: undefined,
  };
  return connection;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

function openWebSockets(): OpenWebSockets {
  return new OpenWebSockets({
    store: { get: () => undefined },
    idleTimeoutMs: 0,
    sendTimeoutMs: 0,
    credentialGraceMs: null,
  });
}

describe('OpenWebSockets', () => {
  it('an origin that ends after its last frames: a client behind on reading still gets them, then the end', async () => {
    const open = openWebSockets();
    const { client, read, received, ended } = slowClient();
    const upstream = originSocket();
    let closed = false;
    open.add(proxied(client, upstream), () => {
      closed = true;
    });
    upstream.write(LAST_MESSAGE);
    upstream.write(ORIGIN_CLOSE);
    upstream.end();
    await settle();
    upstream.destroy();
    await settle();
    expect(closed).toBe(true);
    read();
    await settle();
    read();
    await settle();
    expect(received()).toEqual(Buffer.concat([LAST_MESSAGE, ORIGIN_CLOSE]));
    expect(ended()).toBe(true);
  });

  it('a client that takes none of the last frames is cut at the close grace', async () => {
    const open = openWebSockets();
    const { client } = slowClient();
    const upstream = originSocket();
    open.add(proxied(client, upstream), () => {});
    upstream.end(Buffer.concat([LAST_MESSAGE, ORIGIN_CLOSE]));
    await settle();
    upstream.destroy();
    await eventually('the client’s connection is cut', () => client.destroyed, CLOSE_GRACE_MS + 5_000);
  });
});
