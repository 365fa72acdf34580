import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { type ProxyTracerProvider, trace } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  TEST_PEPPER,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { type GatewayTelemetry, startGatewayTelemetry } from './gateway-telemetry.js';

/**
 * Credentials pass through a gateway: clients' Authorization, Cookie, X-API-Key and
 * Proxy-Authorization headers, keys in the query or in an absolute-form target's user information,
 * session ids in a path's `;` parameters,
 * the credential a route adds toward its origin, and credentials an earlier release recorded in an
 * origin's URL. None of them may reach what operators read: the access and service logs, the spans
 * sent to the collector, /metrics, /status, nor the error answers clients get.
 */

type ExportResult = Parameters<Parameters<SpanExporter['export']>[1]>[0];

const KEY = 've_live_plantedKeyABCDEFGHIJKLMNOPQRSTUV';
const WRONG_KEY = 've_live_plantedWrongKeyABCDEFGHIJKLMNOP';
const BEARER = 'planted.bearer-token.0123456789';
const COOKIE = 'session=planted-cookie-0123456789';
const PROXY_AUTH = 'Basic cGxhbnRlZC1wcm94eS1jcmVkZW50aWFs';
const QUERY_KEY = 'planted-query-key-0123456789';
const URL_PASSWORD = 'planted-url-password-0123456789';
const ORIGIN_SECRET = 'planted-origin-secret-0123456789';
const LEGACY_ORIGIN_PASSWORD = 'planted-legacy-origin-password-0123456789';
/** A servlet session id in the path (`;jsessionid=`), as Tomcat, Jetty and Spring read one from a client keeping no cookie. */
const PATH_SESSION = 'planted-path-session-0123456789';
const PLANTED = [
  KEY,
  WRONG_KEY,
  BEARER,
  'planted-cookie',
  PROXY_AUTH,
  QUERY_KEY,
  URL_PASSWORD,
  ORIGIN_SECRET,
  LEGACY_ORIGIN_PASSWORD,
  PATH_SESSION,
];

const finished: ReadableSpan[] = [];
/** What the gateway itself answered (errors): origins' answers echo what they were sent. */
const gatewayAnswers: string[] = [];
let requests = 0;
let telemetry: GatewayTelemetry;
let origin: TestOrigin;
let gateway: TestGateway;
const host = 'planted.vantageedge.dev';

function expectNothingPlanted(label: string, text: string): void {
  for (const secret of PLANTED) expect(text, `${label} holds ${secret}`).not.toContain(secret);
}

/** A request written as it is on a connection of its own (absolute-form targets included). */
function sendRaw(head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(gateway.gateway.trafficPort, '127.0.0.1', () => socket.end(head));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  telemetry = startGatewayTelemetry({
    enabled: true,
    serviceName: 'gateway-planted-secrets',
    exporter: {
      export(spans: ReadableSpan[], done: (result: ExportResult) => void) {
        finished.push(...spans);
        done({ code: 0 });
      },
      shutdown: async () => {},
    },
  });
  origin = await startTestOrigin('planted');
  gateway = await startTestGateway({}, { tracingEnabled: true });
  const liveOrigin = randomUUID();
  const legacyOrigin = randomUUID();
  const deadOrigin = randomUUID();
  const originPort = new URL(origin.url).port;
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'planted',
      origins: [
        { id: liveOrigin, targets: [origin.url] },
        {
          id: legacyOrigin,
          targets: [`http://legacy-user:${LEGACY_ORIGIN_PASSWORD}@127.0.0.1:${originPort}/`],
        },
        { id: deadOrigin, targets: ['http://127.0.0.1:1'] },
      ],
      routes: [
        { origin_id: liveOrigin, path_pattern: '/open/*' },
        { origin_id: liveOrigin, path_pattern: '/keyed/*', auth_mode: 'apikey_required' },
        { origin_id: liveOrigin, path_pattern: '/jwt/*', auth_mode: 'jwt_required' },
        {
          origin_id: liveOrigin,
          path_pattern: '/upstream-auth/*',
          request_headers: { set: { authorization: `Bearer ${ORIGIN_SECRET}` } },
        },
        { origin_id: legacyOrigin, path_pattern: '/legacy/*' },
        {
          origin_id: deadOrigin,
          path_pattern: '/dead/*',
          request_headers: { set: { 'x-api-key': ORIGIN_SECRET } },
        },
      ],
      apiKeys: [{ key_hash: hashApiKey(TEST_PEPPER, KEY) }],
    }),
  );

  const credentials = {
    authorization: `Bearer ${BEARER}`,
    cookie: COOKIE,
    'proxy-authorization': PROXY_AUTH,
  };
  for (const path of ['/open/1', '/upstream-auth/1', '/legacy/1', '/dead/1', '/jwt/1']) {
    const answer = await send(gateway, host, `${path}?api_key=${QUERY_KEY}`, { headers: credentials });
    requests++;
    if (answer.status >= 400)
      gatewayAnswers.push(`${path} ${answer.status} ${JSON.stringify(answer.headers)} ${answer.text}`);
  }
  for (const path of [`/open/3;jsessionid=${PATH_SESSION}`, `/open/4;lang=en;JSESSIONID=${PATH_SESSION}/x`]) {
    const answer = await send(gateway, host, path);
    requests++;
    if (answer.status >= 400)
      gatewayAnswers.push(`${path} ${answer.status} ${JSON.stringify(answer.headers)} ${answer.text}`);
  }
  for (const key of [KEY, WRONG_KEY]) {
    const answer = await send(gateway, host, `/keyed/1?key=${QUERY_KEY}`, {
      headers: { 'x-api-key': key, cookie: COOKIE },
    });
    requests++;
    if (answer.status >= 400)
      gatewayAnswers.push(`/keyed/1 ${answer.status} ${JSON.stringify(answer.headers)} ${answer.text}`);
  }
  const absolute = await sendRaw(
    `GET http://user:${URL_PASSWORD}@${host}/open/2?access_token=${QUERY_KEY} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
  );
  requests++;
  gatewayAnswers.push(`absolute-form ${absolute.split(' ')[1]} ${absolute}`);
  const provider = (trace.getTracerProvider() as ProxyTracerProvider).getDelegate();
  await (provider as { forceFlush?: () => Promise<void> }).forceFlush?.();
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
  await telemetry?.shutdown();
});

describe('credentials a gateway handles', () => {
  it('were all sent: each request has its access-log line, and the gateway refused four', async () => {
    await vi.waitFor(
      () => expect(gateway.logLines.filter((line) => line['kind'] === 'access')).toHaveLength(requests),
      { timeout: 10_000 },
    );
    expect(gatewayAnswers.map((answer) => answer.split(' ').slice(0, 2).join(' '))).toEqual([
      '/dead/1 502',
      '/jwt/1 401',
      '/keyed/1 401',
      'absolute-form 400',
    ]);
  });

  it('reach no access-log or service-log line', () => {
    expectNothingPlanted('the log', JSON.stringify(gateway.logLines));
  });

  it('reach no span: names, attributes, events or links', () => {
    expect(finished.length).toBeGreaterThan(0);
    const exported = finished.map((span) => ({
      name: span.name,
      attributes: span.attributes,
      events: span.events,
      links: span.links.map((link) => link.attributes),
      status: span.status,
      resource: span.resource.attributes,
    }));
    expectNothingPlanted('the spans', JSON.stringify(exported));
  });

  it('reach neither /metrics nor /status', async () => {
    expectNothingPlanted('/metrics', await (await fetch(`${gateway.adminUrl}/metrics`)).text());
    expectNothingPlanted('/status', await (await fetch(`${gateway.adminUrl}/status`)).text());
  });

  it('are not echoed in the answers clients get', () => {
    expectNothingPlanted('the answers', gatewayAnswers.join('\n'));
  });
});
