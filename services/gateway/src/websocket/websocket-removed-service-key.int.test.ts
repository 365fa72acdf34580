import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { admissionClosures, openWebSocket, roundTrip } from '../testing/open-websockets.js';
import { within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

const SERVICE = 'billing';

/** A key a tenant registers for one of its services, and service tokens signed with it. */
interface ServiceKey {
  jwk: JWK;
  sign(): Promise<string>;
}

async function serviceKey(host: string): Promise<ServiceKey> {
  const kid = `svc-${randomUUID()}`;
  const pair = await generateKeyPair('ES256', { extractable: true });
  return {
    jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256' },
    sign: () => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuer(SERVICE)
        .setSubject(SERVICE)
        .setAudience(host)
        .setIssuedAt(now)
        .setExpirationTime(now + 240)
        .sign(pair.privateKey);
    },
  };
}

/**
 * Regression tests: a WebSocket admitted by a service token stayed open after the tenant removed the
 * key that signed it (a leaked key taken out of its service, or the service re-registered under the
 * same id with new keys), though the replica then refused every request and upgrade with that token:
 * only the service's id and scopes were checked again. It stayed open until the token's `exp`, and for
 * good with GATEWAY_WEBSOCKET_CREDENTIAL_GRACE_SECONDS=off. Now such a snapshot closes it with 1008
 * `signing key withdrawn`; connections of tokens signed with a key the service keeps stay open.
 */
describe('a WebSocket admitted by a service token whose key the tenant removes', () => {
  let echo: WebSocketOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    echo = await startWebSocketOrigin();
    gateway = await startTestGateway({
      GATEWAY_AUTH_FAILURES_PER_MINUTE: '0',
      GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0',
    });
  });

  afterAll(async () => {
    await gateway?.close();
    await echo?.close();
  });

  /** One tenant with a service route; each call applies its next version with the service's keys. */
  function serviceTenant(subdomain: string) {
    const tenantId = randomUUID();
    const originId = randomUUID();
    const routeId = randomUUID();
    let version = 1;
    return {
      tenantId,
      host: `${subdomain}.localhost`,
      registers(...keys: ServiceKey[]) {
        gateway.store.apply(
          buildSnapshot({
            tenantId,
            version: version++,
            subdomain,
            origins: [{ id: originId, targets: [echo.url] }],
            routes: [{ id: routeId, origin_id: originId, path_pattern: '/svc/*', auth_mode: 'service' }],
            settings: { service_accounts: [{ id: SERVICE, keys: keys.map((key) => key.jwk) }] },
          }),
        );
      },
    };
  }

  const connect = async (host: string, key: ServiceKey) =>
    openWebSocket(gateway, '/svc/live', { host, authorization: `Bearer ${await key.sign()}` });

  it('is closed 1008 once a snapshot drops its key from the service; one signed with a kept key stays open', async () => {
    const tenant = serviceTenant(`svc-key-${randomUUID().slice(0, 8)}`);
    const [leaked, kept] = [await serviceKey(tenant.host), await serviceKey(tenant.host)];
    tenant.registers(leaked, kept);
    const onLeaked = await connect(tenant.host, leaked);
    const onKept = await connect(tenant.host, kept);
    expect(await roundTrip(onLeaked.socket, 'before')).toBe('before');

    tenant.registers(kept);

    const refused = await send(gateway, tenant.host, '/svc/x', {
      headers: { authorization: `Bearer ${await leaked.sign()}` },
    });
    expect(refused.status).toBe(401);
    expect(await within(onLeaked.closed, 5_000, 'the leaked key’s WebSocket closed')).toEqual({
      code: 1008,
      reason: 'signing key withdrawn',
    });
    expect(await admissionClosures(gateway, tenant.tenantId, 'signing_key_withdrawn')).toBe(1);
    expect(await roundTrip(onKept.socket, 'still here')).toBe('still here');
    onKept.socket.close();
  });

  it('is closed 1008 when the service is registered again under its id with other keys', async () => {
    const tenant = serviceTenant(`svc-again-${randomUUID().slice(0, 8)}`);
    const [old, replacement] = [await serviceKey(tenant.host), await serviceKey(tenant.host)];
    tenant.registers(old);
    const onOld = await connect(tenant.host, old);
    expect(await roundTrip(onOld.socket, 'before')).toBe('before');

    tenant.registers(replacement);

    expect(await within(onOld.closed, 5_000, 'the old key’s WebSocket closed')).toEqual({
      code: 1008,
      reason: 'signing key withdrawn',
    });
    const onReplacement = await connect(tenant.host, replacement);
    expect(await roundTrip(onReplacement.socket, 'new')).toBe('new');
    onReplacement.socket.close();
  });

  it('stays open when a snapshot keeps its key, whatever else of the service changes', async () => {
    const tenant = serviceTenant(`svc-kept-${randomUUID().slice(0, 8)}`);
    const [key, added] = [await serviceKey(tenant.host), await serviceKey(tenant.host)];
    tenant.registers(key);
    const open = await connect(tenant.host, key);

    tenant.registers(added, key);

    expect(await roundTrip(open.socket, 'kept')).toBe('kept');
    open.socket.close();
  });
});
