import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { startTlsTestGateway } from '../testing/http2-websockets.js';
import { catchAllTenant, connectRaw, pause, type RawClient, within } from '../testing/raw-connections.js';
import { readResponses } from '../testing/raw-exchange.js';

/**
 * One HTTP/1.1 connection carrying requests for several tenants, one after another (a client, or a
 * proxy in front, reusing its connection whatever the Host): what one request does to the connection
 * must not answer, cut or refuse another tenant's request on it.
 *
 * Regression tests:
 * - a CONNECT pipelined behind a request still waiting for its origin had its raw 405 written at once,
 *   ahead of that answer: the client read the refusal as the answer to its first request (which the
 *   origin went on to act on), and the connection was closed before the real answer came;
 * - a request with a body pipelined behind one still waiting for its origin is not read until its turn,
 *   yet node's GATEWAY_REQUEST_TIMEOUT_MS runs for it from its head: when it ran out, the connection was
 *   cut, and the first request (another tenant's) lost the answer its origin then gave;
 * - a request pipelined behind requests received whole whose body node's parser refused (or whose head
 *   was too large) cut the connection at once: the requests ahead, maybe another tenant's whose origin
 *   had acted on it, were never answered;
 * - requests pipelined behind the last of a connection's GATEWAY_MAX_REQUESTS_PER_CONNECTION were each
 *   answered a bare 503 (no error code, in no access log or metric of their tenant), which a client does
 *   not send again, where a request after a `Connection: close` answer is not handled at all (RFC 9112
 *   §9.6) and the client sends it again on a new connection (§9.3.2); and the connection stayed open
 *   after the answer that said `close`.
 */
const TENANT_A = 'one-connection-a';
const TENANT_B = 'one-connection-b';

/** An origin that holds each request until the test releases it; its answer names the tenant. */
interface HeldOrigin extends HttpOrigin {
  /** Paths seen, in order. */
  readonly seen: string[];
  /** Answers the requests held so far. */
  releaseHeld(): void;
}

async function startHeldOrigin(name: string): Promise<HeldOrigin> {
  const seen: string[] = [];
  const held: Array<() => void> = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    seen.push(req.url ?? '');
    held.push(() => res.end(`${name} answers ${req.url}`));
  };
  const origin = await startHttpOrigin(handler);
  return {
    ...origin,
    seen,
    releaseHeld() {
      for (const answer of held.splice(0)) answer();
    },
  };
}

/** Short enough for a test to outlast it while a request waits for its turn. */
const REQUEST_TIMEOUT_MS = 500;

let originA: HeldOrigin;
let originB: HeldOrigin;
let gateway: TestGateway;
/** The same tenants behind a gateway with a short request timeout. */
let impatientGateway: TestGateway;
/** The same tenants behind a gateway whose connections each carry two requests. */
let budgetGateway: TestGateway;
const REQUESTS_PER_CONNECTION = 2;
const clients: RawClient[] = [];

beforeAll(async () => {
  originA = await startHeldOrigin(TENANT_A);
  originB = await startHeldOrigin(TENANT_B);
  gateway = await startTlsTestGateway();
  gateway.store.apply(catchAllTenant(TENANT_A, originA.url));
  gateway.store.apply(catchAllTenant(TENANT_B, originB.url));
  impatientGateway = await startTlsTestGateway({
    GATEWAY_HEADERS_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    GATEWAY_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
  });
  impatientGateway.store.apply(catchAllTenant(TENANT_A, originA.url));
  impatientGateway.store.apply(catchAllTenant(TENANT_B, originB.url));
  budgetGateway = await startTlsTestGateway({
    GATEWAY_MAX_REQUESTS_PER_CONNECTION: String(REQUESTS_PER_CONNECTION),
    // Longer than the test waits: the connection must close because its answer said so.
    GATEWAY_KEEP_ALIVE_TIMEOUT_MS: '60000',
  });
  budgetGateway.store.apply(catchAllTenant(TENANT_A, originA.url));
  budgetGateway.store.apply(catchAllTenant(TENANT_B, originB.url));
});

afterAll(async () => {
  for (const client of clients) client.socket.destroy();
  await gateway?.close();
  await impatientGateway?.close();
  await budgetGateway?.close();
  await originA?.close();
  await originB?.close();
});

/** Plain HTTP/1.1, or HTTPS/1.1 with the default certificate (SNI names no tenant's). */
type Listener = 'plain' | 'tls';

async function connect(to: TestGateway, kind: Listener): Promise<RawClient> {
  const port = kind === 'tls' ? to.gateway.tlsPort! : to.gateway.trafficPort;
  const client = await connectRaw(kind, port);
  clients.push(client);
  return client;
}

function openConnections(of: TestGateway): Promise<number> {
  return new Promise((resolve, reject) =>
    of.gateway.trafficServer.getConnections((error, plain) =>
      error
        ? reject(error)
        : of.gateway.tlsServer!.getConnections((tlsError, tls) =>
            tlsError ? reject(tlsError) : resolve(plain + tls),
          ),
    ),
  );
}

const get = (tenant: string, path: string) => `GET ${path} HTTP/1.1\r\nHost: ${tenant}.localhost\r\n\r\n`;

describe('requests of several tenants on one HTTP/1.1 connection', () => {
  it.each(['plain', 'tls'] as const)(
    '%s: a CONNECT pipelined behind a request waiting for its origin is refused after that answer, not instead of it',
    async (kind) => {
      const client = await connect(gateway, kind);
      client.socket.write(
        `POST /orders-${kind} HTTP/1.1\r\nHost: ${TENANT_A}.localhost\r\nContent-Length: 2\r\n\r\n{}` +
          `CONNECT internal.example:443 HTTP/1.1\r\nHost: internal.example:443\r\n\r\n`,
      );
      await vi.waitFor(() => expect(originA.seen).toContain(`/orders-${kind}`), { timeout: 10_000 });
      originA.releaseHeld();
      await within(client.closed, 10_000, 'the connection closed after the CONNECT was refused');

      const { responses } = readResponses(client.received(), ['POST', 'CONNECT']);
      expect(responses.map((response) => response.status)).toEqual([200, 405]);
      expect(responses[0]?.body).toBe(`${TENANT_A} answers /orders-${kind}`);
      expect(responses[1]?.body).toContain('"code":"method_not_supported"');
    },
  );

  it.each(['plain', 'tls'] as const)(
    '%s: a request waiting its turn past the request timeout does not cut the answer of the request ahead of it',
    async (kind) => {
      const client = await connect(impatientGateway, kind);
      // More than node reads of a request no one reads yet: the rest of the body waits in the socket.
      const body = 'x'.repeat(256 * 1024);
      client.socket.write(
        get(TENANT_A, `/report-${kind}`) +
          `PUT /upload-${kind} HTTP/1.1\r\nHost: ${TENANT_B}.localhost\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      await vi.waitFor(() => expect(originA.seen).toContain(`/report-${kind}`), { timeout: 10_000 });
      // Tenant A's origin takes longer than the request timeout the PUT's head started.
      await pause(4 * REQUEST_TIMEOUT_MS);
      originA.releaseHeld();
      await within(client.closed, 10_000, 'the connection closed');

      const { responses } = readResponses(client.received(), ['GET', 'PUT']);
      expect(responses.map((response) => response.status)).toEqual([200, 408]);
      expect(responses[0]?.body).toBe(`${TENANT_A} answers /report-${kind}`);
      expect(responses[1]?.body).toContain('"code":"request_timeout"');
      // The late request was never handled: tenant B's origin did not see it.
      expect(originB.seen).not.toContain(`/upload-${kind}`);
      // Nor does its unread body keep the connection (a slot of the client's) open at the gateway.
      await vi.waitFor(async () => expect(await openConnections(impatientGateway)).toBe(0), {
        timeout: 10_000,
      });
    },
  );

  it.each(['plain', 'tls'] as const)(
    '%s: requests pipelined past the connection budget are not handled; the budget’s last answer closes the connection',
    async (kind) => {
      const client = await connect(budgetGateway, kind);
      client.socket.write(
        get(TENANT_A, `/first-${kind}`) +
          get(TENANT_A, `/second-${kind}`) +
          `POST /order-${kind} HTTP/1.1\r\nHost: ${TENANT_B}.localhost\r\nContent-Length: 2\r\n\r\n{}` +
          get(TENANT_B, `/status-${kind}`),
      );
      await vi.waitFor(
        () => {
          originA.releaseHeld();
          expect(originA.seen).toContain(`/second-${kind}`);
        },
        { timeout: 10_000 },
      );
      originA.releaseHeld();
      // Closed by the gateway after the answer that said so, not left to the client or a timeout.
      await within(client.closed, 10_000, 'the connection closed after its budget’s last answer');

      const { responses, unread } = readResponses(client.received(), ['GET', 'GET', 'POST', 'GET']);
      expect(responses.map((response) => response.status)).toEqual([200, 200]);
      expect(unread).toBe('');
      expect(responses[0]?.headers.get('keep-alive')).toEqual([`timeout=60, max=${REQUESTS_PER_CONNECTION}`]);
      expect(responses[1]?.headers.get('connection')).toEqual(['close']);
      expect(responses[1]?.body).toBe(`${TENANT_A} answers /second-${kind}`);
      // Tenant B's requests never ran: the client sends them again on a new connection.
      expect(originB.seen).not.toContain(`/order-${kind}`);
      expect(originB.seen).not.toContain(`/status-${kind}`);
    },
  );

  it.each(['plain', 'tls'] as const)(
    '%s: a malformed body pipelined behind requests received whole does not cut their answers',
    async (kind) => {
      const client = await connect(gateway, kind);
      client.socket.write(
        get(TENANT_A, `/invoice-${kind}`) +
          get(TENANT_B, `/status-after-invoice-${kind}`) +
          `POST /upload-${kind} HTTP/1.1\r\nHost: ${TENANT_B}.localhost\r\nTransfer-Encoding: chunked\r\n\r\n` +
          'zz\r\nnot a chunk\r\n',
      );
      await vi.waitFor(() => expect(originA.seen).toContain(`/invoice-${kind}`), { timeout: 10_000 });
      originA.releaseHeld();
      await vi.waitFor(() => expect(originB.seen).toContain(`/status-after-invoice-${kind}`), {
        timeout: 10_000,
      });
      originB.releaseHeld();
      await within(client.closed, 10_000, 'the connection closed');

      const { responses } = readResponses(client.received(), ['GET', 'GET', 'POST']);
      expect(responses.map((response) => response.status)).toEqual([200, 200, 400]);
      expect(responses[0]?.body).toBe(`${TENANT_A} answers /invoice-${kind}`);
      expect(responses[1]?.body).toBe(`${TENANT_B} answers /status-after-invoice-${kind}`);
      expect(responses[2]?.body).toContain('"code":"malformed_request"');
      expect(originB.seen).not.toContain(`/upload-${kind}`);
    },
  );
});
