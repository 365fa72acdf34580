import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * A split keyed on Host (an override sending one of the tenant's hosts to the canary, APISIX's
 * `vars: [["host", "==", …]]`) reads the host the request is for whatever its protocol: HTTP/2 clients
 * (every browser over TLS) send `:authority` and no Host line.
 */
const HOST = 'h2split.localhost';

let stable: TestOrigin;
let canary: TestOrigin;
let gateway: TestGateway;
let session: ClientHttp2Session;

beforeAll(async () => {
  stable = await startTestOrigin('stable');
  canary = await startTestOrigin('canary');
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  const stableId = randomUUID();
  const canaryId = randomUUID();
  const origins = [
    { origin_id: stableId, weight: 1 },
    { origin_id: canaryId, weight: 0 },
  ];
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'h2split',
      origins: [
        { id: stableId, targets: [stable.url] },
        { id: canaryId, targets: [canary.url] },
      ],
      routes: [
        {
          origin_id: stableId,
          path_pattern: '/by-host/*',
          traffic_split: { origins, overrides: [{ header: 'host', value: HOST, origin_id: canaryId }] },
        },
        {
          origin_id: stableId,
          path_pattern: '/other-host/*',
          traffic_split: {
            origins,
            overrides: [{ header: 'host', value: 'beta.h2split.localhost', origin_id: canaryId }],
          },
        },
      ],
    }),
  );
  session = http2Connect(gateway.url);
});

afterAll(async () => {
  session?.close();
  await gateway?.close();
  await stable?.close();
  await canary?.close();
});

describe('a traffic split override on Host', () => {
  it('sends the host it names to its origin over HTTP/1.1 and HTTP/2 alike', async () => {
    const overHttp1 = await send(gateway, HOST, '/by-host/1');
    expect(overHttp1.json()['origin']).toBe('canary');
    const overHttp2 = await http2Request(session, { path: '/by-host/2', authority: HOST });
    expect(overHttp2.status).toBe(200);
    expect(JSON.parse(overHttp2.body)['origin']).toBe('canary');
  });

  it('leaves a request for another host to the weights over HTTP/2', async () => {
    const answer = await http2Request(session, { path: '/other-host/1', authority: HOST });
    expect(JSON.parse(answer.body)['origin']).toBe('stable');
  });
});
