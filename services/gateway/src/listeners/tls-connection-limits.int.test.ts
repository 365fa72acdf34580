import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls, { type TLSSocket } from 'node:tls';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { http2Connect, http2Request, https1Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { catchAllTenant, connectRaw, pause, within } from '../testing/raw-connections.js';

/**
 * The traffic listener's limits on the TLS port (HTTPS/1.1 and HTTP/2), as connection-limits.int.test.ts
 * checks them on the plain port: GATEWAY_HEADERS_TIMEOUT_MS / GATEWAY_REQUEST_TIMEOUT_MS (408),
 * GATEWAY_MAX_HEADER_BYTES (431 headers_too_large), GATEWAY_KEEP_ALIVE_TIMEOUT_MS,
 * GATEWAY_MAX_REQUESTS_PER_CONNECTION (Connection: close, then nothing more) and GATEWAY_MAX_CONNECTIONS, one
 * budget for both ports. Regression tests: before, the TLS listener applied none of them — a client
 * trickling its headers over TLS held its connection with no answer, every connection past the limit
 * was accepted and served, and a connection served any number of requests.
 */
const HOST = 'limits.localhost';

let dir: string;
let certFile: string;
let keyFile: string;

beforeAll(async () => {
  const certificate = await selfSignedTestCertificate({ dnsNames: ['*.localhost', 'localhost'] });
  dir = await mkdtemp(path.join(tmpdir(), 'gateway-tls-limits-'));
  certFile = path.join(dir, 'cert.pem');
  keyFile = path.join(dir, 'key.pem');
  await writeFile(certFile, certificate.chainPem);
  await writeFile(keyFile, certificate.privateKeyPem);
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function tlsGateway(env: Record<string, string>): Promise<TestGateway> {
  return startTestGateway({
    GATEWAY_TLS_PORT: '0',
    GATEWAY_TLS_CERT_FILE: certFile,
    GATEWAY_TLS_KEY_FILE: keyFile,
    ...env,
  });
}

const tenantFor = (originUrl: string) => catchAllTenant('limits', originUrl);
const connect = (kind: 'tls' | 'plain', port: number) => connectRaw(kind, port, HOST);

async function droppedConnections(gateway: TestGateway): Promise<number> {
  const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
  const line = metrics
    .split('\n')
    .find((entry) => entry.startsWith('vantageedge_gateway_dropped_connections_total'));
  return Number(line?.split(' ').pop() ?? 0);
}

/** A TLS connection that chose HTTP/2 (ALPN h2) and reads what it is sent, once its handshake is done. */
function connectH2(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: HOST,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
    });
    socket.on('error', () => {});
    socket.resume();
    socket.once('secureConnect', () => resolve(socket));
    socket.once('close', () => reject(new Error('closed before its handshake')));
  });
}

// Each group has a gateway of its own, so the groups and the cases of a group run side by side, but for
// the cases of a gateway whose few connections one case takes.
describe.concurrent('the TLS listener', () => {
  describe('slow clients on the TLS port', () => {
    let origin: TestOrigin;
    let gateway: TestGateway;

    beforeAll(async () => {
      origin = await startTestOrigin('tls-limits-origin');
      gateway = await tlsGateway({ GATEWAY_HEADERS_TIMEOUT_MS: '1000', GATEWAY_REQUEST_TIMEOUT_MS: '2000' });
      gateway.store.apply(tenantFor(origin.url));
    });

    afterAll(async () => {
      await gateway?.close();
      await origin?.close();
    });

    it('regression: an HTTPS/1.1 client trickling its headers is answered 408 and cut at the headers timeout', async () => {
      const client = await connect('tls', gateway.gateway.tlsPort as number);
      expect(client.secured).toBe(true);
      client.socket.write(`GET /slow-loris HTTP/1.1\r\nHost: ${HOST}\r\n`);
      let line = 0;
      const trickle = setInterval(() => {
        line += 1;
        if (!client.socket.destroyed) client.socket.write(`X-Trickle-${line}: ${line}\r\n`);
      }, 200);
      try {
        // node's default would hold it for 60 s; the gateway's headers timeout is 1 s here.
        await within(client.closed, 5_000, 'the trickling TLS client is disconnected');
        expect(client.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
        expect(JSON.parse(client.received().split('\r\n\r\n')[1] ?? '')).toEqual({
          error: { code: 'request_timeout', message: 'the request was not received in time' },
        });
      } finally {
        clearInterval(trickle);
        client.socket.destroy();
      }
      expect(origin.seen.some((request) => request.url === '/slow-loris')).toBe(false);
    });

    it('regression: an HTTPS/1.1 client that trickles its body is cut at the request timeout', async () => {
      const client = await connect('tls', gateway.gateway.tlsPort as number);
      client.socket.write(`POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 1000\r\n\r\n`);
      const drip = setInterval(() => {
        if (!client.socket.destroyed) client.socket.write('x');
      }, 200);
      try {
        await within(client.closed, 6_000, 'the slow TLS uploader is disconnected');
        expect(client.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      } finally {
        clearInterval(drip);
        client.socket.destroy();
      }
    });

    // Regression test: node's own TLS handshake timeout (120 s) applied, so connections that never sent
    // a ClientHello held GATEWAY_MAX_CONNECTIONS slots of both ports for two minutes at no cost.
    it('regression: a connection that never starts its TLS handshake is cut at the headers timeout', async () => {
      const silent = await connect('plain', gateway.gateway.tlsPort as number);
      const partial = await connect('plain', gateway.gateway.tlsPort as number);
      partial.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])); // a ClientHello's first bytes
      try {
        await within(
          Promise.all([silent.closed, partial.closed]),
          5_000,
          'the silent TLS connections are cut',
        );
      } finally {
        silent.socket.destroy();
        partial.socket.destroy();
      }
    });

    // Regression test: past the handshake, an HTTP/2 connection was held to GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS
    // (two minutes by default) whether its client had sent its preface or not.
    it('regression: an HTTP/2 connection that never sends its preface and SETTINGS, or trickles them, is cut at the headers timeout', async () => {
      const port = gateway.gateway.tlsPort as number;
      const [silent, trickler] = await Promise.all([connectH2(port), connectH2(port)]);
      const opening = Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
        Buffer.alloc(9),
      ]);
      opening[opening.length - 6] = 4; // an empty SETTINGS frame, never sent whole
      let sent = 0;
      const drip = setInterval(() => {
        if (sent < opening.length - 1 && !trickler.destroyed) trickler.write(opening.subarray(sent, ++sent));
      }, 100);
      try {
        expect([silent.alpnProtocol, trickler.alpnProtocol]).toEqual(['h2', 'h2']);
        await within(
          Promise.all(
            [silent, trickler].map((socket) => new Promise((resolve) => socket.once('close', resolve))),
          ),
          5_000,
          'the HTTP/2 connections without a preface are cut',
        );
      } finally {
        clearInterval(drip);
        silent.destroy();
        trickler.destroy();
      }
    });

    // Regression test: CONNECT on HTTPS/1.1 was dropped without an answer (only the plain port listened).
    it('regression: CONNECT over TLS is answered 405 in the error shape, as on the plain port', async () => {
      const client = await connect('tls', gateway.gateway.tlsPort as number);
      client.socket.write(`CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n\r\n`);
      await within(client.closed, 5_000, 'the CONNECT answer');
      const [head, body] = client.received().split('\r\n\r\n');
      expect(head?.startsWith('HTTP/1.1 405 Method Not Allowed')).toBe(true);
      expect(JSON.parse(body ?? '')).toEqual({
        error: { code: 'method_not_supported', message: 'the gateway does not tunnel CONNECT requests' },
      });
    });
  });

  describe('idle HTTPS/1.1 keep-alive connections', () => {
    let origin: TestOrigin;
    let gateway: TestGateway;

    beforeAll(async () => {
      origin = await startTestOrigin('tls-limits-origin');
      gateway = await tlsGateway({
        GATEWAY_HEADERS_TIMEOUT_MS: '1000',
        GATEWAY_REQUEST_TIMEOUT_MS: '2000',
        GATEWAY_KEEP_ALIVE_TIMEOUT_MS: '1000',
      });
      gateway.store.apply(tenantFor(origin.url));
    });

    afterAll(async () => {
      await gateway?.close();
      await origin?.close();
    });

    // Regression test: blank lines (which begin no request) after a response held the connection for ever.
    it('a client sending only blank lines after its response is cut once the keep-alive and headers timeouts passed', async () => {
      const client = await connect('tls', gateway.gateway.tlsPort as number);
      client.socket.write(`GET /then-blank-lines HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      const blankLines = setInterval(() => {
        if (!client.socket.destroyed) client.socket.write('\r\n');
      }, 200);
      try {
        await within(client.closed, 8_000, 'the TLS connection sending blank lines is closed');
        expect(client.received()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      } finally {
        clearInterval(blankLines);
        client.socket.destroy();
      }
    });
  });

  describe('connection and header limits on the TLS port', () => {
    let origin: TestOrigin;
    let gateway: TestGateway;
    let tlsPort: number;

    beforeAll(async () => {
      origin = await startTestOrigin('tls-limits-origin');
      gateway = await tlsGateway({
        GATEWAY_MAX_CONNECTIONS: '5',
        GATEWAY_MAX_REQUESTS_PER_CONNECTION: '2',
        GATEWAY_KEEP_ALIVE_TIMEOUT_MS: '3000',
      });
      tlsPort = gateway.gateway.tlsPort as number;
      gateway.store.apply(tenantFor(origin.url));
    });

    afterAll(async () => {
      await gateway?.close();
      await origin?.close();
    });

    it.sequential('regression: a request head over GATEWAY_MAX_HEADER_BYTES gets the plain listener’s 431 headers_too_large', async () => {
      const client = await connect('tls', tlsPort);
      client.socket.write(`GET /huge HTTP/1.1\r\nHost: ${HOST}\r\nX-Huge: ${'a'.repeat(32 * 1024)}\r\n\r\n`);
      await within(client.closed, 5_000, 'the 431 answer');
      expect(client.received()).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
      expect(JSON.parse(client.received().split('\r\n\r\n')[1] ?? '')).toEqual({
        error: { code: 'headers_too_large', message: 'the request headers are too large' },
      });
      expect(origin.seen.some((request) => request.url === '/huge')).toBe(false);
    });

    it.sequential('a client speaking cleartext HTTP to the TLS port is dropped without a cleartext answer', async () => {
      const client = await connect('plain', tlsPort);
      client.socket.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      await within(client.closed, 5_000, 'the failed handshake closes the connection');
      expect(client.received()).not.toContain('HTTP/1.1');
    });

    it.sequential('regression: keep-alive over TLS announces the timeout, the last response of the budget says close and ends the connection, requests past it are not handled', async () => {
      const client = await connect('tls', tlsPort);
      try {
        // Four pipelined requests, as on the plain listener: 200, 200 (Connection: close), then the
        // connection ends; the client sends the other two again on a new one (RFC 9112 §9.3.2).
        client.socket.write(`GET /pipelined HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`.repeat(4));
        await within(client.closed, 5_000, 'the connection ends after the budget’s last answer');
        const answers = client
          .received()
          .split(/(?=HTTP\/1\.1 \d{3} )/)
          .filter((part) => part !== '');
        expect(answers.map((answer) => answer.slice(9, 12))).toEqual(['200', '200']);
        expect(answers[0]?.toLowerCase()).toContain('connection: keep-alive');
        expect(answers[0]?.toLowerCase()).toContain('keep-alive: timeout=3, max=2');
        expect(answers[1]?.toLowerCase()).toContain('connection: close');
      } finally {
        client.socket.destroy();
      }
      expect(origin.seen.filter((request) => request.url === '/pipelined')).toHaveLength(2);
    });

    it.sequential('regression: GATEWAY_MAX_CONNECTIONS is one budget for both ports; over it, TLS connections are closed before the handshake', async () => {
      const dropsBefore = await droppedConnections(gateway);
      const plainHolders = await Promise.all(
        Array.from({ length: 3 }, () => connect('plain', gateway.gateway.trafficPort)),
      );
      const tlsHolders = await Promise.all(Array.from({ length: 2 }, () => connect('tls', tlsPort)));
      const holders = [...plainHolders, ...tlsHolders];
      try {
        expect(tlsHolders.every((holder) => holder.secured)).toBe(true);
        // Let the servers register all five before more arrive.
        await pause(200);
        const extraTls = await connect('tls', tlsPort);
        await within(extraTls.closed, 5_000, 'the extra TLS connection is closed');
        expect(extraTls.secured).toBe(false);
        expect(extraTls.received()).toBe('');
        const extraPlain = await connect('plain', gateway.gateway.trafficPort);
        extraPlain.socket.write(`GET /over-the-limit HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
        await within(extraPlain.closed, 5_000, 'the extra plain connection is closed');
        expect(extraPlain.received()).toBe('');
        expect(await droppedConnections(gateway)).toBeGreaterThanOrEqual(dropsBefore + 2);
        expect(holders.every((holder) => !holder.socket.destroyed)).toBe(true);
      } finally {
        for (const holder of holders) holder.socket.destroy();
      }
      await Promise.all(holders.map((holder) => holder.closed));
      await pause(200);
      // Freed slots serve again, on either port.
      expect((await https1Request(tlsPort, HOST, '/after-tls')).status).toBe(200);
      expect((await send(gateway, HOST, '/after-plain')).status).toBe(200);
    });

    it.sequential('an HTTP/2 session over TLS counts as one connection of the budget', async () => {
      const plainHolders = await Promise.all(
        Array.from({ length: 4 }, () => connect('plain', gateway.gateway.trafficPort)),
      );
      let session: ClientHttp2Session | undefined;
      try {
        session = http2Connect(`https://127.0.0.1:${tlsPort}`, { servername: HOST });
        // A stream on the session, which stays open (its budget here is 2 streams, then GOAWAY).
        expect((await http2Request(session, { path: '/h2-first', authority: HOST })).status).toBe(200);
        await pause(200);
        const extra = await connect('tls', tlsPort);
        await within(extra.closed, 5_000, 'the sixth connection is closed');
        expect(extra.secured).toBe(false);
      } finally {
        session?.destroy();
        for (const holder of plainHolders) holder.socket.destroy();
      }
      await Promise.all(plainHolders.map((holder) => holder.closed));
      await pause(200);
      expect((await https1Request(tlsPort, HOST, '/after-h2')).status).toBe(200);
    });
  });
});
