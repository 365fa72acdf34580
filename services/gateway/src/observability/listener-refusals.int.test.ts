import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type BodyEndingOrigin, startBodyEndingOrigin } from '../testing/http-origins.js';
import { catchAllTenant, connectRaw, within } from '../testing/raw-connections.js';

/**
 * Regression: the requests a listener refuses before the pipeline sees them (node's parser: 400
 * malformed_request, 431 headers_too_large, 408 request_timeout; 417 for an Expect other than
 * 100-continue; 405 for CONNECT) were neither counted in vantageedge_gateway_error_responses_total nor
 * logged, unlike the pipeline's own refusals (431 too_many_headers). Each is counted and logged once,
 * without a tenant (there is none yet, and the Host is not to be trusted): tenant="unknown", tenant_id null.
 */
const HOST = 'refusals.localhost';
/** The host of a tenant whose origin answers once it has read the whole request body. */
const PIPELINE_HOST = 'pipeline.localhost';

let gateway: TestGateway;
let certificateDir: string;
let bodyReadingOrigin: BodyEndingOrigin;
let pipelineTenantId: string;

beforeAll(async () => {
  const certificate = await selfSignedTestCertificate({ dnsNames: ['*.localhost', 'localhost'] });
  certificateDir = await mkdtemp(path.join(tmpdir(), 'gateway-listener-refusals-'));
  await writeFile(path.join(certificateDir, 'cert.pem'), certificate.chainPem);
  await writeFile(path.join(certificateDir, 'key.pem'), certificate.privateKeyPem);
  gateway = await startTestGateway({
    GATEWAY_HEADERS_TIMEOUT_MS: '300',
    GATEWAY_REQUEST_TIMEOUT_MS: '300',
    GATEWAY_MAX_HEADER_BYTES: '4096',
    GATEWAY_ACCESS_LOG_SAMPLE_RATE: '1',
    GATEWAY_TLS_PORT: '0',
    GATEWAY_TLS_CERT_FILE: path.join(certificateDir, 'cert.pem'),
    GATEWAY_TLS_KEY_FILE: path.join(certificateDir, 'key.pem'),
  });
  gateway.store.apply(catchAllTenant('refusals', 'http://127.0.0.1:9'));
  bodyReadingOrigin = await startBodyEndingOrigin();
  const pipelineTenant = catchAllTenant('pipeline', bodyReadingOrigin.url);
  pipelineTenantId = pipelineTenant.tenant.id;
  gateway.store.apply(pipelineTenant);
});

afterAll(async () => {
  await gateway?.close();
  await bodyReadingOrigin?.close();
  if (certificateDir) await rm(certificateDir, { recursive: true, force: true });
});

/** vantageedge_gateway_error_responses_total of `tenant` (a tenant id, or "unknown") for `status` and `code`. */
async function errorCount(tenant: string, status: number, code: string): Promise<number> {
  const text = await gateway.registry.metrics();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('vantageedge_gateway_error_responses_total{')) continue;
    if (!line.includes(`tenant="${tenant}"`)) continue;
    if (!line.includes(`status="${status}"`) || !line.includes(`code="${code}"`)) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

const refusalCount = (status: number, code: string) => errorCount('unknown', status, code);

const accessLines = (code: string) =>
  gateway.logLines.filter((line) => line['kind'] === 'access' && line['error_code'] === code);

/** Sends `bytes` (and nothing more) and resolves with what came back once the gateway closed. */
async function exchange(kind: 'plain' | 'tls', bytes: string): Promise<string> {
  const port = kind === 'tls' ? gateway.gateway.tlsPort! : gateway.gateway.trafficPort;
  const client = await connectRaw(kind, port);
  client.socket.write(bytes);
  await within(client.closed, 10_000, 'the gateway closes the connection');
  return client.received();
}

describe('a request a listener refuses before the pipeline', () => {
  const cases: Array<{ name: string; kind: 'plain' | 'tls'; bytes: string; status: number; code: string }> = [
    {
      name: 'malformed',
      kind: 'plain',
      bytes: 'NOT HTTP AT ALL\r\n\r\n',
      status: 400,
      code: 'malformed_request',
    },
    {
      name: 'malformed over TLS',
      kind: 'tls',
      bytes: 'NOT HTTP AT ALL\r\n\r\n',
      status: 400,
      code: 'malformed_request',
    },
    {
      name: 'head too large',
      kind: 'plain',
      bytes: `GET / HTTP/1.1\r\nHost: ${HOST}\r\nX-Big: ${'a'.repeat(8_000)}\r\n\r\n`,
      status: 431,
      code: 'headers_too_large',
    },
    {
      name: 'head not received in time',
      kind: 'plain',
      bytes: `GET / HTTP/1.1\r\nHost: ${HOST}\r\n`,
      status: 408,
      code: 'request_timeout',
    },
    {
      name: 'an expectation other than 100-continue',
      kind: 'plain',
      bytes: `GET /x?secret=1 HTTP/1.1\r\nHost: ${HOST}\r\nExpect: teapot\r\nConnection: close\r\n\r\n`,
      status: 417,
      code: 'expectation_failed',
    },
    {
      name: 'CONNECT',
      kind: 'plain',
      bytes: 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
      status: 405,
      code: 'method_not_supported',
    },
    {
      // A forward-proxy client may put its proxy credentials in the target's user information.
      name: 'CONNECT with user information in its target',
      kind: 'plain',
      bytes: 'CONNECT user:secret@example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
      status: 405,
      code: 'method_not_supported',
    },
  ];

  it.each(cases)(
    '$name: answered $status, counted and logged once without a tenant',
    async ({ kind, bytes, status, code }) => {
      const countedBefore = await refusalCount(status, code);
      const loggedBefore = accessLines(code).length;
      const answer = await exchange(kind, bytes);
      expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(answer).toContain(`"code":"${code}"`);
      await vi.waitFor(() => expect(accessLines(code)).toHaveLength(loggedBefore + 1), { timeout: 5_000 });
      expect(await refusalCount(status, code)).toBe(countedBefore + 1);
      const line = accessLines(code).at(-1)!;
      expect(line).toMatchObject({ status, error_code: code, tenant_id: null, route_id: null });
      expect(line['client_ip']).toBe('127.0.0.1');
      expect(JSON.stringify(line)).not.toContain('secret');
    },
  );
});

describe('a request the HTTP/2 listener refuses before the pipeline', () => {
  it.each([
    {
      name: 'CONNECT',
      headers: { ':method': 'CONNECT', ':authority': 'example.com:443' },
      status: 405,
      code: 'method_not_supported',
    },
    {
      name: 'an expectation other than 100-continue',
      headers: { ':method': 'GET', ':path': '/x', ':authority': HOST, expect: 'teapot' },
      status: 417,
      code: 'expectation_failed',
    },
  ])(
    '$name: answered $status, counted and logged once without a tenant',
    async ({ headers, status, code }) => {
      const countedBefore = await refusalCount(status, code);
      const loggedBefore = accessLines(code).length;
      const session = http2.connect(`https://localhost:${gateway.gateway.tlsPort}`, {
        rejectUnauthorized: false,
      });
      try {
        const answered = await within(
          new Promise<number>((resolve, reject) => {
            const stream = session.request(headers);
            stream.on('response', (head) => resolve(Number(head[':status'])));
            stream.on('error', reject);
            stream.end();
          }),
          10_000,
          'the HTTP/2 answer',
        );
        expect(answered).toBe(status);
      } finally {
        session.close();
      }
      await vi.waitFor(() => expect(accessLines(code)).toHaveLength(loggedBefore + 1), { timeout: 5_000 });
      expect(await refusalCount(status, code)).toBe(countedBefore + 1);
      expect(accessLines(code).at(-1)).toMatchObject({ status, error_code: code, tenant_id: null });
    },
  );
});

// Regression: a request the pipeline was handling whose body node's parser then refused (400) or did not
// receive in time (408) was recorded twice: as a listener refusal without a tenant, and by the pipeline
// under its tenant as a 499 client_closed_request, an answer the client never got.
describe('a request the pipeline has, whose body is malformed or late', () => {
  it.each([
    {
      name: 'a malformed chunk',
      path: '/body/malformed-chunk',
      bytes: (target: string) =>
        `POST ${target} HTTP/1.1\r\nHost: ${PIPELINE_HOST}\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n`,
      status: 400,
      code: 'malformed_request',
    },
    {
      name: 'a body not received in time',
      path: '/body/late',
      bytes: (target: string) =>
        `POST ${target} HTTP/1.1\r\nHost: ${PIPELINE_HOST}\r\nContent-Length: 10\r\n\r\nabc`,
      status: 408,
      code: 'request_timeout',
    },
  ])(
    '$name: recorded once, under its tenant, with the answer the client got',
    async ({ path: target, bytes, status, code }) => {
      const refusedBefore = await refusalCount(status, code);
      const countedBefore = await errorCount(pipelineTenantId, status, code);
      const answer = await exchange('plain', bytes(target));
      expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      const linesOfRequest = () =>
        gateway.logLines.filter((line) => line['kind'] === 'access' && line['path'] === target);
      await vi.waitFor(() => expect(linesOfRequest()).toHaveLength(1), { timeout: 5_000 });
      expect(linesOfRequest()[0]).toMatchObject({
        tenant_id: pipelineTenantId,
        status,
        error_code: code,
      });
      expect(await errorCount(pipelineTenantId, status, code)).toBe(countedBefore + 1);
      // The listener answered before the pipeline recorded the request: a refusal would be counted by now.
      expect(await refusalCount(status, code)).toBe(refusedBefore);
    },
  );
});

// Regression: a listener's refusal was logged with the socket's address as node spells it, while the
// pipeline logs the client address: on a dual-stack listener (GATEWAY_HOST=::) an IPv4 client was
// `::ffff:127.0.0.1` in one line and `127.0.0.1` in the next, and behind a trusted load balancer every
// refused request whose head was read (417, CONNECT) was logged as the balancer's address.
describe('the client address of a listener refusal, on a dual-stack listener behind a trusted proxy', () => {
  let dualStack: TestGateway;

  beforeAll(async () => {
    dualStack = await startTestGateway({
      GATEWAY_HOST: '::',
      GATEWAY_H2C: 'true',
      GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32',
      GATEWAY_ACCESS_LOG_SAMPLE_RATE: '1',
    });
    dualStack.store.apply(catchAllTenant('dualstack', 'http://127.0.0.1:9'));
  });
  afterAll(async () => {
    await dualStack?.close();
  });

  const lineOf = async (code: string, loggedBefore: number) => {
    const lines = () =>
      dualStack.logLines.filter((line) => line['kind'] === 'access' && line['error_code'] === code);
    await vi.waitFor(() => expect(lines()).toHaveLength(loggedBefore + 1), { timeout: 5_000 });
    return lines().at(-1)!;
  };
  const loggedCount = (code: string) =>
    dualStack.logLines.filter((line) => line['kind'] === 'access' && line['error_code'] === code).length;

  async function rawExchange(bytes: string): Promise<string> {
    const client = await connectRaw('plain', dualStack.gateway.trafficPort);
    client.socket.write(bytes);
    await within(client.closed, 10_000, 'the gateway closes the connection');
    return client.received();
  }

  it('logs the same client address the pipeline logs for a request from the same client', async () => {
    const forwarded = 'X-Forwarded-For: 6.6.6.6, 203.0.113.9\r\n';
    const refusedBefore = loggedCount('expectation_failed');
    await rawExchange(
      `GET /served HTTP/1.1\r\nHost: dualstack.localhost\r\n${forwarded}Connection: close\r\n\r\n`,
    );
    await rawExchange(
      `GET /refused HTTP/1.1\r\nHost: dualstack.localhost\r\n${forwarded}Expect: teapot\r\nConnection: close\r\n\r\n`,
    );
    // The pipeline's line (its origin, port 9, is closed: whatever it answered), with the address it resolved.
    const served = await vi.waitFor(
      () => {
        const line = dualStack.logLines.find(
          (entry) => entry['kind'] === 'access' && entry['path'] === '/served',
        );
        if (line === undefined) throw new Error('no access-log line for /served yet');
        return line;
      },
      { timeout: 10_000 },
    );
    const refused = await lineOf('expectation_failed', refusedBefore);
    expect(served['client_ip']).toBe('203.0.113.9');
    expect(refused['client_ip']).toBe(served['client_ip']);
  });

  it('logs an HTTP/2 refusal with the address its X-Forwarded-For resolves to', async () => {
    const before = loggedCount('expectation_failed');
    const session = http2.connect(`http://127.0.0.1:${dualStack.gateway.trafficPort}`);
    try {
      const status = await within(
        new Promise<number>((resolve, reject) => {
          const stream = session.request({
            ':path': '/x',
            ':authority': 'dualstack.localhost',
            expect: 'teapot',
            'x-forwarded-for': '203.0.113.10',
          });
          stream.on('response', (head) => resolve(Number(head[':status'])));
          stream.on('error', reject);
          stream.end();
        }),
        10_000,
        'the HTTP/2 answer',
      );
      expect(status).toBe(417);
    } finally {
      session.close();
    }
    expect((await lineOf('expectation_failed', before))['client_ip']).toBe('203.0.113.10');
  });

  it('logs a request whose head could not be read with its peer, spelled as the pipeline spells it', async () => {
    const before = loggedCount('malformed_request');
    expect(await rawExchange('NOT HTTP AT ALL\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    expect((await lineOf('malformed_request', before))['client_ip']).toBe('127.0.0.1');
  });
});
