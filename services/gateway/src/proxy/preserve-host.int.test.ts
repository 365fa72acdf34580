import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { connect as connectHttp2 } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import {
  createTestCa,
  issueTestCertificate,
  type TestCa,
} from '@vantageedge/shared/testing/test-certificates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestOrigin, type TestOrigin } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { startTlsTestGateway, type TlsTestGateway } from '../testing/http2-websockets.js';
import { openWebSocket } from '../testing/open-websockets.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * A route's preserve_host (Kong's route preserve_host, APISIX's pass_host: pass): the origin gets the
 * host the client asked for as its Host — the one the tenant was resolved from — instead of its
 * target's. Real origins record what they received: plain requests, a retried one, a WebSocket upgrade,
 * an HTTP/2 request (`:authority`), and an https target whose SNI and verified name stay its own.
 */

let gateway: TlsTestGateway;
let echo: TestOrigin;
let flaky: HttpOrigin;
let sockets: WebSocketOrigin;
let secure: HttpOrigin;
let originCa: TestCa;
/** Host headers the flaky origin received, by X-Request-Id. */
const flakyHosts = new Map<string, string[]>();
/** What the https origin received: its Host header and the SNI of the connection. */
const secureSeen: Array<{ host: string | undefined; servername: string | false | null | undefined }> = [];

beforeAll(async () => {
  echo = await startTestOrigin('echo');
  flaky = await startHttpOrigin((req, res) => {
    const id = String(req.headers['x-request-id']);
    const hosts = flakyHosts.get(id) ?? [];
    hosts.push(String(req.headers.host));
    flakyHosts.set(id, hosts);
    req.resume();
    // Each request fails once: the route's retry sends it again.
    res.writeHead(hosts.length === 1 ? 503 : 200).end(hosts.length === 1 ? 'busy' : 'ok');
  });
  sockets = await startWebSocketOrigin({ name: 'ws' });
  originCa = await createTestCa('Preserve Host Origin CA');
  const certificate = await issueTestCertificate(originCa, { dnsNames: ['origin.internal'] });
  secure = await startHttpOrigin(
    (req, res) => {
      secureSeen.push({ host: req.headers.host, servername: (req.socket as TLSSocket).servername });
      req.resume();
      res.writeHead(200).end('secure');
    },
    { chainPem: certificate.chainPem, privateKeyPem: certificate.privateKeyPem },
  );
  gateway = await startTlsTestGateway();
  const ids = { echo: randomUUID(), flaky: randomUUID(), sockets: randomUUID(), secure: randomUUID() };
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'pres',
      customDomains: ['shop.example'],
      origins: [
        { id: ids.echo, targets: [echo.url] },
        { id: ids.flaky, targets: [flaky.url] },
        { id: ids.sockets, targets: [sockets.url] },
        {
          id: ids.secure,
          targets: [secure.url],
          tls: { ca_certificates: originCa.certificatePem, server_name: 'origin.internal' },
        },
      ],
      routes: [
        { origin_id: ids.echo, path_pattern: '/target/*' },
        { origin_id: ids.echo, path_pattern: '/client/*', preserve_host: true },
        {
          origin_id: ids.flaky,
          path_pattern: '/retried/*',
          preserve_host: true,
          retries: { attempts: 2, on: ['503'], budget: { percent: 100, min_retries: 1000 } },
        },
        { origin_id: ids.sockets, path_pattern: '/socket/*', preserve_host: true },
        { origin_id: ids.secure, path_pattern: '/secure/*', preserve_host: true },
      ],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([echo?.close(), flaky?.close(), sockets?.close(), secure?.close()]);
});

function originHeaders(response: { json: () => Record<string, unknown> }): IncomingHttpHeaders {
  return response.json()['headers'] as IncomingHttpHeaders;
}

describe('preserve_host', () => {
  it('off (the default): the origin gets its target’s host', async () => {
    const response = await send(gateway, 'pres.localhost', '/target/a');
    expect(response.status).toBe(200);
    expect(originHeaders(response).host).toBe(new URL(echo.url).host);
  });

  it('on: the origin gets the host the tenant was resolved from, as every client spelling of it names it', async () => {
    const cases: Array<[sent: string, received: string]> = [
      ['pres.localhost', 'pres.localhost'],
      ['PRES.Localhost', 'pres.localhost'],
      ['pres.localhost.', 'pres.localhost'],
      ['Pres.localhost.:8080', 'pres.localhost:8080'],
      ['shop.example', 'shop.example'],
      ['SHOP.example.:443', 'shop.example:443'],
    ];
    for (const [sent, received] of cases) {
      const response = await send(gateway, sent, '/client/a');
      expect(response.status, sent).toBe(200);
      const headers = originHeaders(response);
      expect(headers.host, sent).toBe(received);
      // X-Forwarded-Host keeps telling the client's spelling, as it does without preserve_host.
      expect(headers['x-forwarded-host'], sent).toBe(sent);
    }
  });

  it('on: a port no listener could have is not passed on', async () => {
    for (const sent of ['pres.localhost:', 'pres.localhost:0', 'pres.localhost:99999']) {
      const response = await send(gateway, sent, '/client/a');
      expect(response.status, sent).toBe(200);
      expect(originHeaders(response).host, sent).toBe('pres.localhost');
    }
    const response = await send(gateway, 'pres.localhost:08080', '/client/a');
    expect(originHeaders(response).host).toBe('pres.localhost:8080');
  });

  it('on: a retried request carries the client’s host on every attempt', async () => {
    const id = `retried-${randomUUID()}`;
    const response = await send(gateway, 'Pres.localhost', '/retried/a', { headers: { 'x-request-id': id } });
    expect(response.status).toBe(200);
    expect(flakyHosts.get(id)).toEqual(['pres.localhost', 'pres.localhost']);
  });

  it('on: an HTTP/2 request’s :authority becomes the origin’s Host', async () => {
    const session = connectHttp2(gateway.tlsUrl, { rejectUnauthorized: false, servername: 'pres.localhost' });
    session.on('error', () => {});
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': '/client/h2', ':authority': 'PRES.localhost' });
        let text = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => (text += chunk));
        stream.on('end', () => resolve(text));
        stream.on('error', reject);
        stream.end();
      });
      const headers = (JSON.parse(body) as { headers: IncomingHttpHeaders }).headers;
      expect(headers.host).toBe('pres.localhost');
    } finally {
      session.close();
    }
  });

  it('on: a WebSocket upgrade reaches the origin with the client’s host', async () => {
    const before = sockets.upgrades.length;
    const open = await openWebSocket(gateway, '/socket/chat', { host: 'pres.localhost.' });
    open.socket.close();
    expect(sockets.upgrades.slice(before).map((headers) => headers.host)).toEqual(['pres.localhost']);
  });

  it('on: an https target is still reached by its own name (SNI and certificate), never the client’s', async () => {
    const before = secureSeen.length;
    const response = await send(gateway, 'shop.example', '/secure/a');
    expect(response.status).toBe(200);
    expect(response.text).toBe('secure');
    expect(secureSeen.slice(before)).toEqual([{ host: 'shop.example', servername: 'origin.internal' }]);
  });
});
