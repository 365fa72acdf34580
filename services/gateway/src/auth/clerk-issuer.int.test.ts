import { randomUUID } from 'node:crypto';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  OFFLINE_CLERK_ISSUER,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
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
 * The `iss` of Clerk session tokens on jwt_required routes, as the admin API checks it: a token signed
 * with the instance's key but naming another issuer is refused when the gateway knows the instance's
 * issuer (CLERK_ISSUER, else the Frontend API CLERK_PUBLISHABLE_KEY names).
 */
const ANOTHER_INSTANCE = 'https://another-instance.clerk.accounts.dev';
const publishableKeyOf = (frontendApi: string) =>
  `pk_test_${Buffer.from(`${frontendApi}$`).toString('base64')}`;

let clerk: ClerkTestKeys;
let origin: TestOrigin;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  clerk = await createClerkTestKeys();
  origin = await startTestOrigin('clerk-issuer');
});

afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
  await origin?.close();
});

async function gatewayWith(
  settings: Record<string, string>,
): Promise<{ gateway: TestGateway; host: string }> {
  const gateway = await startTestGateway({
    CLERK_JWT_KEY: clerk.publicKeyPem,
    GATEWAY_AUTH_FAILURES_PER_MINUTE: '0',
    ...settings,
  });
  gateways.push(gateway);
  const subdomain = `issuer${gateways.length}`;
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain,
      clerkOrgId: `org_${subdomain}`,
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/api/*', auth_mode: 'jwt_required' }],
    }),
  );
  return { gateway, host: `${subdomain}.localhost` };
}

async function statusWith(
  target: { gateway: TestGateway; host: string },
  issuer: string,
): Promise<{ status: number; code?: string }> {
  const orgId = `org_${target.host.split('.')[0]}`;
  const token = await signClerkToken(clerk, { userId: 'user_issuer', orgId, issuer });
  const response = await send(target.gateway, target.host, '/api/items', {
    headers: { authorization: `Bearer ${token}` },
  });
  return {
    status: response.status,
    code: response.status === 200 ? undefined : JSON.parse(response.text).error?.code,
  };
}

describe('Clerk session tokens on a jwt_required route', () => {
  it("with CLERK_ISSUER: takes the instance's tokens and refuses another issuer's 401 invalid_token", async () => {
    const target = await gatewayWith({ CLERK_ISSUER: OFFLINE_CLERK_ISSUER });
    expect(await statusWith(target, OFFLINE_CLERK_ISSUER)).toEqual({ status: 200, code: undefined });
    expect(await statusWith(target, ANOTHER_INSTANCE)).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('with CLERK_PUBLISHABLE_KEY only: the issuer it names is the one taken', async () => {
    const target = await gatewayWith({
      CLERK_PUBLISHABLE_KEY: publishableKeyOf('another-instance.clerk.accounts.dev'),
    });
    expect(await statusWith(target, ANOTHER_INSTANCE)).toEqual({ status: 200, code: undefined });
    expect(await statusWith(target, OFFLINE_CLERK_ISSUER)).toEqual({ status: 401, code: 'invalid_token' });
  });

  it('with neither: the issuer is not checked (the key alone decides)', async () => {
    const target = await gatewayWith({});
    expect(await statusWith(target, ANOTHER_INSTANCE)).toEqual({ status: 200, code: undefined });
  });
});
