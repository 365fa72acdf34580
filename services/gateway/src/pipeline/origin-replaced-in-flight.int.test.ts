import { randomUUID } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayResponse,
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { oidcSigningKey, type SigningKey } from '../testing/signing-keys.js';
import { buildSnapshot, type TestOrigin as TestOriginConfig } from '../testing/snapshots.js';

const ISSUER = 'https://idp.in-flight.test';
const AUDIENCE = 'in-flight-api';

/**
 * A request takes its route (and the route's origin) from the tenant's version in force when it
 * arrived, and picks its origin target only after its earlier stages (authentication may wait for a key
 * set, a rate limit or quota for Redis). A snapshot that changes the origin meanwhile — any setting: its
 * timeout, its targets, its TLS — replaces the origin's pools and closes the old ones. The request is
 * then sent with the origin as it is now, not refused 503 for the old pools being closed: a tenant
 * admin editing an origin must not fail the requests that happen to be in flight.
 */
describe('a request in flight while a snapshot replaces its origin', () => {
  let key: SigningKey;
  let jwks: Server;
  let jwksBase: string;
  /** Key-set fetches the server holds until the test answers them. */
  const heldFetches: ServerResponse[] = [];
  let fetchArrived: () => void = () => {};
  let first: TestOrigin;
  let second: TestOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    key = await oidcSigningKey(ISSUER, AUDIENCE);
    jwks = createServer((_req, res) => {
      heldFetches.push(res);
      fetchArrived();
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    jwksBase = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}`;
    [first, second] = await Promise.all([startTestOrigin('first'), startTestOrigin('second')]);
    gateway = await startTestGateway({ GATEWAY_AUTH_FAILURES_PER_MINUTE: '0' });
  });

  afterAll(async () => {
    await gateway?.close();
    await Promise.all([first?.close(), second?.close()]);
    await new Promise<void>((resolve) => {
      jwks?.close(() => resolve());
      jwks?.closeAllConnections();
    });
  });

  /** A tenant whose route needs an OIDC token, so its first request waits for its key set (its own). */
  function tenant(subdomain: string) {
    const tenantId = randomUUID();
    const originId = randomUUID();
    const routeId = randomUUID();
    let version = 0;
    return {
      apply: (origin: Omit<TestOriginConfig, 'id'>) =>
        gateway.store.apply(
          buildSnapshot({
            tenantId,
            version: ++version,
            subdomain,
            origins: [{ id: originId, ...origin }],
            routes: [{ id: routeId, origin_id: originId, path_pattern: '/api/*', auth_mode: 'jwt_required' }],
            settings: {
              oidc: { issuer: ISSUER, audience: AUDIENCE, jwks_url: `${jwksBase}/keys/${subdomain}` },
            },
          }),
        ),
    };
  }

  /** Sends a request, and once it waits for the key set runs `meanwhile`, then lets the key set answer. */
  async function whileAuthenticating(host: string, meanwhile: () => void): Promise<GatewayResponse> {
    const arrived = new Promise<void>((resolve) => {
      fetchArrived = resolve;
    });
    const response = send(gateway, host, '/api/orders', {
      headers: { authorization: `Bearer ${await key.sign('user-1')}` },
    });
    await arrived;
    meanwhile();
    for (const held of heldFetches.splice(0)) {
      held.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [key.jwk] }));
    }
    return response;
  }

  it('is sent to the origin whose settings changed meanwhile, not answered 503', async () => {
    const changed = tenant('in-flight-timeout');
    changed.apply({ targets: [first.url] });
    const response = await whileAuthenticating('in-flight-timeout.localhost', () =>
      changed.apply({ targets: [first.url], timeout_seconds: 7 }),
    );
    expect(response.status, response.text).toBe(200);
    expect(response.json()['origin']).toBe('first');
  });

  it('goes to the target the origin names now when its targets were replaced', async () => {
    const moved = tenant('in-flight-moved');
    moved.apply({ targets: [first.url] });
    const seenBefore = first.seen.length;
    const response = await whileAuthenticating('in-flight-moved.localhost', () =>
      moved.apply({ targets: [second.url] }),
    );
    expect(response.status, response.text).toBe(200);
    expect(response.json()['origin']).toBe('second');
    expect(first.seen.length).toBe(seenBefore);
  });
});
