import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkTemplateToken,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { exportJWK, importSPKI } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayResponse,
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';
import { TOKEN_QUERY_PARAMETER, TOKEN_SUBPROTOCOL_PREFIX } from '../websocket/browser-token.js';

const PERMISSION = 'org:invoices:manage';
const TEN_YEARS_SECONDS = 10 * 365 * 24 * 60 * 60;

/** Clerk's Backend API as far as the gateway asks it: the instance's JWKS at /v1/jwks. */
async function startClerkJwks(keys: ClerkTestKeys): Promise<{ server: Server; url: string }> {
  const jwk = {
    ...(await exportJWK(await importSPKI(keys.publicKeyPem, 'RS256', { extractable: true }))),
    kid: keys.kid,
    alg: 'RS256',
    use: 'sig',
  };
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/**
 * Regression tests: the gateway took any token Clerk's key verified for a session token. A Clerk JWT
 * template's token (what an app fetches for Hasura, Supabase or another service, signed with the same
 * instance key, tagged with the template `cat` header or, minted earlier, not tagged at all) names no
 * session: it may live for years, survives sign-out and may sit with a third party — and a template
 * copying `org_id` / `org_role` / `org_permissions` passed the tenant's org routes as that org's admin.
 * A pending session (`sts: pending`: sign-in tasks left) was taken as signed in. Both are 401 now, for a
 * bearer header and for a browser's WebSocket token alike, and stay refused when presented again.
 */
describe.each([
  ['networkless (CLERK_JWT_KEY)', false],
  ["through Clerk's JWKS (CLERK_SECRET_KEY)", true],
])('Clerk tokens that are not a finished session, verified %s', (_mode, throughJwks) => {
  let origin: TestOrigin;
  let gateway: TestGateway;
  let clerk: ClerkTestKeys;
  let clerkApi: Server | undefined;

  const call = (path: string, token: string) =>
    send(gateway, 'sessions.localhost', path, { headers: { authorization: `Bearer ${token}` } });

  const orgAdminTemplate = (tagged: boolean) =>
    signClerkTemplateToken(clerk, {
      userId: 'user_template',
      tagged,
      expiresInSeconds: TEN_YEARS_SECONDS,
      claims: {
        org_id: 'org_sessions',
        org_role: 'org:admin',
        org_slug: 'sessions',
        org_permissions: [PERMISSION],
        'https://hasura.io/jwt/claims': { 'x-hasura-default-role': 'user' },
      },
    });

  function expectRefused(response: Omit<GatewayResponse, 'json'>, reason: RegExp) {
    expect(response.status, response.text).toBe(401);
    expect(JSON.parse(response.text)).toMatchObject({ error: { code: 'invalid_token' } });
    expect(response.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    expect(response.headers['www-authenticate']).toMatch(reason);
  }

  beforeAll(async () => {
    origin = await startTestOrigin('origin');
    clerk = await createClerkTestKeys();
    if (throughJwks) {
      const jwks = await startClerkJwks(clerk);
      clerkApi = jwks.server;
      gateway = await startTestGateway({
        CLERK_SECRET_KEY: 'sk_test_session_kinds',
        CLERK_API_URL: jwks.url,
      });
    } else {
      gateway = await startTestGateway({ CLERK_JWT_KEY: clerk.publicKeyPem });
    }
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId: randomUUID(),
        subdomain: 'sessions',
        clerkOrgId: 'org_sessions',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/admin/*',
            auth_mode: 'jwt_required',
            required_scopes: [PERMISSION],
          },
          { origin_id: originId, path_pattern: '/members/*', auth_mode: 'jwt_required' },
          {
            origin_id: originId,
            path_pattern: '/live/*',
            auth_mode: 'jwt_required',
            websocket_token: 'query',
          },
          {
            origin_id: originId,
            path_pattern: '/chat/*',
            auth_mode: 'jwt_or_apikey',
            websocket_token: 'subprotocol',
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    clerkApi?.closeAllConnections();
    await new Promise((resolve) => (clerkApi === undefined ? resolve(undefined) : clerkApi.close(resolve)));
  });

  it("serves a session token of the tenant's org", async () => {
    const session = await signClerkToken(clerk, {
      userId: 'user_admin',
      orgId: 'org_sessions',
      orgRole: 'admin',
    });
    const response = await call('/members/x', session);
    expect(response.status, response.text).toBe(200);
  });

  it("refuses a JWT template's token copying the org admin's claims, tagged or not, on every presentation", async () => {
    const before = origin.seen.length;
    for (const tagged of [true, false]) {
      const template = await orgAdminTemplate(tagged);
      for (const path of ['/admin/x', '/members/x', '/admin/again']) {
        expectRefused(await call(path, template), /error_description="[^"]*not a session token/);
      }
    }
    expect(origin.seen.length).toBe(before);
  });

  it('refuses a pending session until the user has finished signing in', async () => {
    const pending = await signClerkToken(clerk, {
      userId: 'user_pending',
      orgId: 'org_sessions',
      sessionStatus: 'pending',
    });
    for (let presentation = 0; presentation < 2; presentation++) {
      expectRefused(await call('/members/x', pending), /error_description="[^"]*pending session/);
    }
    const finished = await signClerkToken(clerk, { userId: 'user_pending', orgId: 'org_sessions' });
    expect((await call('/members/x', finished)).status).toBe(200);
  });

  it("refuses them as a browser's WebSocket token, in the query or a subprotocol", async () => {
    const template = await orgAdminTemplate(false);
    const pending = await signClerkToken(clerk, {
      userId: 'user_pending',
      orgId: 'org_sessions',
      sessionStatus: 'pending',
    });
    const session = await signClerkToken(clerk, { userId: 'user_ws', orgId: 'org_sessions' });
    const inQuery = (token: string) =>
      sendUpgrade(gateway, 'sessions.localhost', `/live/x?${TOKEN_QUERY_PARAMETER}=${token}`);
    const inSubprotocol = (token: string) =>
      sendUpgrade(gateway, 'sessions.localhost', '/chat/x', {
        'sec-websocket-protocol': `chat, ${TOKEN_SUBPROTOCOL_PREFIX}${token}`,
      });
    for (const upgrade of [inQuery, inSubprotocol]) {
      expectRefused(await upgrade(template), /not a session token/);
      expectRefused(await upgrade(pending), /pending session/);
      // The session token passes authentication (the plain HTTP origin then declines the upgrade).
      expect((await upgrade(session)).status).not.toBe(401);
    }
  });
});
