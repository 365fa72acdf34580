import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DefaultCertificateFiles,
  writeDefaultCertificateFiles,
} from '../testing/default-certificate-files.js';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { catchAllTenant, connectRaw, pause, within } from '../testing/raw-connections.js';
import { readResponses } from '../testing/raw-exchange.js';

/**
 * When the drain period ends and the listeners stop accepting, a connection whose client has begun a
 * request (part of its head has arrived) is a request in flight, as on Envoy's and nginx's drain: it is
 * answered (`Connection: close`) within the shutdown timeout, never cut as an idle keep-alive connection.
 * A client on a slow link sending its head as the stop begins must not lose its request on one port and
 * have it served on the other. Regression test: the TLS port judged a connection idle by whether a byte
 * had arrived since its last answer ended, so a pipelined request whose head had begun before that
 * answer ended was cut there (the plain port answered it).
 */
let origin: TestOrigin;
let certificates: DefaultCertificateFiles;

beforeAll(async () => {
  origin = await startTestOrigin('begun-origin');
  certificates = await writeDefaultCertificateFiles('stop-begun');
});

afterAll(async () => {
  await origin?.close();
  await certificates?.remove();
});

async function gatewayWithTenant(): Promise<TestGateway> {
  // An idle connection's own timeout is far off: only the stop closes it.
  const gateway = await startTestGateway({
    ...certificates.tlsListenerEnv,
    GATEWAY_KEEP_ALIVE_TIMEOUT_MS: '120000',
  });
  gateway.store.apply(catchAllTenant('begun', origin.url));
  return gateway;
}

describe('gateway stop with a request head begun', () => {
  for (const kind of ['plain', 'tls'] as const) {
    it(`answers a ${kind} request whose head began before the listeners stopped accepting`, async () => {
      const gateway = await gatewayWithTenant();
      try {
        const port = kind === 'tls' ? (gateway.gateway.tlsPort ?? 0) : gateway.gateway.trafficPort;
        const client = await connectRaw(kind, port, 'begun.localhost');
        client.socket.write('GET /begun HTTP/1.1\r\nHost: begun.localhost\r\n');
        await pause(100);

        const stopped = gateway.gateway.close({ timeoutMs: 5_000 });
        await pause(300);
        client.socket.write('Accept: */*\r\n\r\n');
        await within(
          Promise.race([
            client.closed,
            (async () => {
              while (readResponses(client.received(), []).responses.length === 0) await pause(20);
            })(),
          ]),
          5_000,
          'the answer or the connection closed',
        );
        const [answer] = readResponses(client.received(), []).responses;
        expect(
          [answer?.status, answer?.headers.get('connection')],
          `received: ${JSON.stringify(client.received())}`,
        ).toEqual([200, ['close']]);
        await stopped;
      } finally {
        await gateway.close();
      }
    });

    it(`answers a pipelined ${kind} request whose head began before its predecessor's answer ended`, async () => {
      const gateway = await gatewayWithTenant();
      try {
        const port = kind === 'tls' ? (gateway.gateway.tlsPort ?? 0) : gateway.gateway.trafficPort;
        const client = await connectRaw(kind, port, 'begun.localhost');
        client.socket.write(
          'GET /first HTTP/1.1\r\nHost: begun.localhost\r\n\r\nGET /second HTTP/1.1\r\nHost: begun.localhost\r\n',
        );
        await within(
          (async () => {
            while (readResponses(client.received(), []).responses.length === 0) await pause(20);
          })(),
          5_000,
          'the first answer',
        );
        await pause(100);

        const stopped = gateway.gateway.close({ timeoutMs: 5_000 });
        await pause(300);
        client.socket.write('Accept: */*\r\n\r\n');
        await within(
          Promise.race([
            client.closed,
            (async () => {
              while (readResponses(client.received(), []).responses.length < 2) await pause(20);
            })(),
          ]),
          5_000,
          'the second answer or the connection closed',
        );
        const answers = readResponses(client.received(), []).responses;
        expect(
          answers.map((answer) => [answer.status, answer.headers.get('connection')]),
          `received: ${JSON.stringify(client.received())}`,
        ).toEqual([
          [200, ['keep-alive']],
          [200, ['close']],
        ]);
        await stopped;
      } finally {
        await gateway.close();
      }
    });

    it(`closes an idle keep-alive ${kind} connection at the stop, not at the shutdown timeout`, async () => {
      const gateway = await gatewayWithTenant();
      try {
        const port = kind === 'tls' ? (gateway.gateway.tlsPort ?? 0) : gateway.gateway.trafficPort;
        const client = await connectRaw(kind, port, 'begun.localhost');
        client.socket.write('GET /idle HTTP/1.1\r\nHost: begun.localhost\r\n\r\n');
        await within(
          (async () => {
            while (readResponses(client.received(), []).responses.length === 0) await pause(20);
          })(),
          5_000,
          'the answer',
        );

        const stopped = gateway.gateway.close({ timeoutMs: 60_000 });
        await within(client.closed, 10_000, 'the idle connection closed');
        await within(stopped, 10_000, 'the stop');
      } finally {
        await gateway.close();
      }
    });

    it(`answers 417 to a ${kind} request with an unmet Expect begun before the stop, then closes its connection`, async () => {
      const gateway = await gatewayWithTenant();
      try {
        const port = kind === 'tls' ? (gateway.gateway.tlsPort ?? 0) : gateway.gateway.trafficPort;
        const client = await connectRaw(kind, port, 'begun.localhost');
        client.socket.write('GET /expect HTTP/1.1\r\nHost: begun.localhost\r\n');
        await pause(100);

        const stopped = gateway.gateway.close({ timeoutMs: 60_000 });
        await pause(300);
        client.socket.write('Expect: something\r\n\r\n');
        // The stop would otherwise wait its whole timeout for a connection it took for busy.
        await within(client.closed, 10_000, 'the connection closed');
        expect(readResponses(client.received(), []).responses.map((answer) => answer.status)).toEqual([417]);
        await within(stopped, 10_000, 'the stop');
      } finally {
        await gateway.close();
      }
    });
  }
});
