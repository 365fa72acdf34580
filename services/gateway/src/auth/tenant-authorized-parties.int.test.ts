import { randomUUID } from 'node:crypto';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayResponse,
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { admissionClosures, openWebSocket, roundTrip } from '../testing/open-websockets.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade, type UpgradeAnswer } from '../testing/upgrade-request.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';
import { TOKEN_QUERY_PARAMETER, TOKEN_SUBPROTOCOL_PREFIX } from '../websocket/browser-token.js';

/**
 * settings.authorized_parties: every tenant's app signs its users in with the platform's one Clerk
 * instance, so a script on tenant Alpha's page can get a session token for a visitor (Clerk's getToken())
 * whose azp is Alpha's origin. The gateway's CLERK_AUTHORIZED_PARTIES lists every tenant's app, so
 * without a list of its own, Beta's jwt routes take that token from anyone who holds it.
 */
const ALPHA_APP = 'https://app.alpha.test';
const BETA_APP = 'https://app.beta.test';
/** An app of Beta's the platform's list does not name: Beta's own list replaces the platform's. */
const BETA_MOBILE_APP = 'https://m.beta.example';
/** A user signed up with both tenants (Beta's user list names them). */
const SHARED_USER = 'user_shared_visitor';

describe("a tenant's authorized parties for Clerk session tokens", () => {
  let clerk: ClerkTestKeys;
  let origin: TestOrigin;
  let echo: WebSocketOrigin;
  let gateway: TestGateway;
  const betaId = randomUUID();
  const betaOriginId = randomUUID();

  const betaSnapshot = (version: number, settings: Record<string, unknown>) =>
    buildSnapshot({
      tenantId: betaId,
      version,
      subdomain: 'beta',
      clerkUserIds: [SHARED_USER],
      origins: [{ id: betaOriginId, targets: [origin.url] }],
      routes: [
        { origin_id: betaOriginId, path_pattern: '/user/*', auth_mode: 'jwt_required' },
        { origin_id: betaOriginId, path_pattern: '/either/*', auth_mode: 'jwt_or_apikey' },
        {
          origin_id: betaOriginId,
          path_pattern: '/live/*',
          auth_mode: 'jwt_required',
          websocket_token: 'query',
        },
        {
          origin_id: betaOriginId,
          path_pattern: '/chat/*',
          auth_mode: 'jwt_required',
          websocket_token: 'subprotocol',
        },
      ],
      settings,
    });

  const tokenFrom = (azp: string | undefined) =>
    signClerkToken(clerk, { userId: SHARED_USER, ...(azp === undefined ? {} : { azp }) });
  const call = async (host: string, path: string, token: string) =>
    send(gateway, host, path, { headers: { authorization: `Bearer ${token}` } });
  const expectRefused = (response: GatewayResponse | UpgradeAnswer, body?: string) => {
    expect(response.status, response.text).toBe(401);
    expect(String(response.headers['www-authenticate'])).toMatch(/^Bearer .*error="invalid_token"/);
    if (body !== undefined) {
      expect(JSON.parse(body)).toMatchObject({ error: { code: 'invalid_token' } });
    }
  };

  beforeAll(async () => {
    clerk = await createClerkTestKeys();
    origin = await startTestOrigin('origin');
    echo = await startWebSocketOrigin();
    gateway = await startTestGateway({
      CLERK_JWT_KEY: clerk.publicKeyPem,
      CLERK_AUTHORIZED_PARTIES: `${ALPHA_APP},${BETA_APP}`,
    });
    const alphaOriginId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'alpha',
        clerkUserIds: [SHARED_USER],
        origins: [{ id: alphaOriginId, targets: [origin.url] }],
        routes: [{ origin_id: alphaOriginId, path_pattern: '/user/*', auth_mode: 'jwt_required' }],
      }),
    );
    gateway.store.apply(betaSnapshot(1, {}));
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    await echo?.close();
  });

  it("without a list of its own, a tenant takes the platform's list (as before)", async () => {
    const alphaToken = await tokenFrom(ALPHA_APP);
    expect((await call('alpha.localhost', '/user/x', alphaToken)).status).toBe(200);
    expect((await call('beta.localhost', '/user/x', alphaToken)).status).toBe(200);
    const foreign = await call('beta.localhost', '/user/x', await tokenFrom('https://evil.test'));
    expectRefused(foreign, foreign.text);
  });

  it("refuses another tenant's app's token once the tenant lists its own apps; its own are served", async () => {
    gateway.store.apply(betaSnapshot(2, { authorized_parties: [BETA_APP, BETA_MOBILE_APP] }));
    const alphaToken = await tokenFrom(ALPHA_APP);
    for (const path of ['/user/x', '/either/x', '/user/again']) {
      const refused = await call('beta.localhost', path, alphaToken);
      expectRefused(refused, refused.text);
      expect(refused.json()).toMatchObject({ error: { message: expect.stringMatching(/azp/) } });
    }
    const withoutAzp = await call('beta.localhost', '/user/x', await tokenFrom(undefined));
    expectRefused(withoutAzp, withoutAzp.text);

    expect((await call('beta.localhost', '/user/x', await tokenFrom(BETA_APP))).status).toBe(200);
    expect((await call('beta.localhost', '/either/x', await tokenFrom(BETA_MOBILE_APP))).status).toBe(200);
    // Alpha, which set nothing, still takes its own app's token.
    expect((await call('alpha.localhost', '/user/x', alphaToken)).status).toBe(200);
  });

  it('applies the list to a token already served before the tenant set it', async () => {
    gateway.store.apply(betaSnapshot(3, {}));
    const alphaToken = await tokenFrom(ALPHA_APP);
    expect((await call('beta.localhost', '/user/x', alphaToken)).status).toBe(200);
    gateway.store.apply(betaSnapshot(4, { authorized_parties: [BETA_APP] }));
    expectRefused(await call('beta.localhost', '/user/x', alphaToken));
  });

  it("refuses another tenant's app's token on a WebSocket upgrade, in the query or a subprotocol", async () => {
    gateway.store.apply(betaSnapshot(5, { authorized_parties: [BETA_APP] }));
    const inQuery = (token: string) =>
      sendUpgrade(gateway, 'beta.localhost', `/live/x?${TOKEN_QUERY_PARAMETER}=${token}`);
    const inSubprotocol = (token: string) =>
      sendUpgrade(gateway, 'beta.localhost', '/chat/x', {
        'sec-websocket-protocol': `chat, ${TOKEN_SUBPROTOCOL_PREFIX}${token}`,
      });
    const alphaToken = await tokenFrom(ALPHA_APP);
    const betaToken = await tokenFrom(BETA_APP);
    for (const upgrade of [inQuery, inSubprotocol]) {
      expectRefused(await upgrade(alphaToken));
      // Beta's own token passes authentication (the plain HTTP origin then declines the upgrade).
      expect((await upgrade(betaToken)).status).not.toBe(401);
    }
  });

  it('closes an open WebSocket with 1008 once the tenant no longer takes its token’s app; its own app’s stays', async () => {
    const gammaId = randomUUID();
    const echoId = randomUUID();
    const feedId = randomUUID();
    const gammaSnapshot = (version: number, settings: Record<string, unknown>) =>
      buildSnapshot({
        tenantId: gammaId,
        version,
        subdomain: 'gamma',
        clerkUserIds: [SHARED_USER],
        origins: [{ id: echoId, targets: [echo.url] }],
        routes: [{ id: feedId, origin_id: echoId, path_pattern: '/feed/*', auth_mode: 'jwt_required' }],
        settings,
      });
    gateway.store.apply(gammaSnapshot(1, {}));
    const open = async (azp: string) =>
      openWebSocket(gateway, '/feed/x', {
        host: 'gamma.localhost',
        authorization: `Bearer ${await signClerkToken(clerk, { userId: SHARED_USER, azp, expiresInSeconds: 600 })}`,
      });
    const alphas = await open(ALPHA_APP);
    const betas = await open(BETA_APP);

    gateway.store.apply(gammaSnapshot(2, { authorized_parties: [BETA_APP] }));

    expect(await alphas.closed).toEqual({ code: 1008, reason: 'route auth changed' });
    expect(await roundTrip(betas.socket, 'still here')).toBe('still here');
    expect(await admissionClosures(gateway, gammaId, 'auth_changed')).toBe(1);
    betas.socket.close();
  });
});
