import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoutePolicy } from '../pipeline/stage.js';
import {
  type DefaultCertificateFiles,
  writeDefaultCertificateFiles,
} from '../testing/default-certificate-files.js';
import { startTestGateway, startTestOrigin, type TestOrigin } from '../testing/gateway-harness.js';
import { catchAllTenant, connectRaw, pause, type RawClient, within } from '../testing/raw-connections.js';

/**
 * When the listeners stop, a keep-alive connection whose last response was ended but is not yet
 * written (a large body the gateway wrote whole, a cache HIT, still in the connection's buffers for a
 * client that reads slowly) is not idle: its client gets the whole body, then the connection closes.
 * Regression test: node counts a connection idle once its response's `end()` was called, so the stop
 * destroyed it with the rest of the body unsent, on every rolling deploy.
 */
const BODY_BYTES = 16 * 1024 * 1024;
const body = Buffer.alloc(BODY_BYTES, 'x');

let origin: TestOrigin;
let certificates: DefaultCertificateFiles;

beforeAll(async () => {
  origin = await startTestOrigin('unwritten-origin');
  certificates = await writeDefaultCertificateFiles('stop-unwritten');
});

afterAll(async () => {
  await origin?.close();
  await certificates?.remove();
});

/** A stage that answers every request with `body` written at once, as a cache HIT is. */
function wholeBodyAnswers(): { policy: RoutePolicy; ended: Promise<void> } {
  let ended!: () => void;
  const endedPromise = new Promise<void>((resolve) => {
    ended = resolve;
  });
  return {
    policy: {
      name: 'whole-body',
      compileRoute: () => ({
        name: 'whole-body',
        onRequest: ({ res }) => {
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY_BYTES });
          // Once node's end() has run (the gateway holds a response's end to the end of its turn).
          res.once('prefinish', ended);
          res.end(body);
          return 'handled';
        },
      }),
    },
    ended: endedPromise,
  };
}

/** Reads in short spells with pauses between them, until the connection closes. */
async function readSlowly(client: RawClient): Promise<void> {
  let closed = false;
  void client.closed.then(() => {
    closed = true;
  });
  while (!closed) {
    client.socket.resume();
    await pause(10);
    client.socket.pause();
    await pause(40);
  }
}

describe('gateway stop with a response not written yet', () => {
  for (const kind of ['plain', 'tls'] as const) {
    it(`sends a slow ${kind} client the whole of a response ended just before the stop`, async () => {
      const answers = wholeBodyAnswers();
      const gateway = await startTestGateway(
        { ...certificates.tlsListenerEnv, GATEWAY_KEEP_ALIVE_TIMEOUT_MS: '120000' },
        { stages: [answers.policy] },
      );
      try {
        gateway.store.apply(catchAllTenant('unwritten', origin.url));
        const port = kind === 'tls' ? (gateway.gateway.tlsPort ?? 0) : gateway.gateway.trafficPort;
        const client = await connectRaw(kind, port, 'unwritten.localhost');
        client.socket.pause();
        client.socket.write('GET /download HTTP/1.1\r\nHost: unwritten.localhost\r\n\r\n');
        await within(answers.ended, 5_000, 'the answer ended');

        const stopped = gateway.gateway.close({ timeoutMs: 60_000 });
        // Several of the stop's sweeps run while the client reads nothing.
        await pause(500);
        await within(readSlowly(client), 20_000, 'the connection closed');

        const received = client.received();
        const headEnd = received.indexOf('\r\n\r\n');
        expect(received.slice(0, received.indexOf('\r\n'))).toBe('HTTP/1.1 200 OK');
        expect(received.length - headEnd - 4).toBe(BODY_BYTES);
        // Closed once written, as an idle connection: not cut at the shutdown timeout.
        await within(stopped, 10_000, 'the stop');
      } finally {
        await gateway.close();
      }
    });
  }
});
