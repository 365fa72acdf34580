import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEventStore } from '@vantageedge/shared/event-store/factory';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import {
  createClerkTestKeys,
  OFFLINE_CLERK_ISSUER,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneAppFromSettings } from './app-from-settings.js';
import { controlPlaneSettings } from './settings.js';

/**
 * The control plane as `make run-control-plane` builds it from its settings refuses origins on each of
 * its own listeners whatever ORIGIN_BLOCKED_CIDRS says (here loopback is allowed, as in development).
 * Regression: only the admin API's listener was known, so an origin on the metrics listener
 * (CONTROL_PLANE_METRICS_HOST:CONTROL_PLANE_METRICS_PORT) was recorded.
 */
describe('origins on the control plane’s own listeners (loopback origins allowed)', () => {
  const ADMIN = 'user_own_listeners_admin';
  let db: TestDatabase;
  let server: Server;
  let baseUrl: string;
  let token: string;
  let tenantId: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    const keys = await createClerkTestKeys();
    token = await signClerkToken(keys, { userId: ADMIN });
    const settings = parseSettings(controlPlaneSettings, {
      DATABASE_URL: db.url,
      API_KEY_PEPPER: 'own-listeners-pepper-0123456789abcdef',
      CLERK_JWT_KEY: keys.publicKeyPem,
      CLERK_ISSUER: OFFLINE_CLERK_ISSUER,
      PLATFORM_ADMIN_USER_IDS: ADMIN,
      ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
      CONTROL_PLANE_HOST: '127.0.0.1',
      CONTROL_PLANE_PORT: '18080',
      CONTROL_PLANE_METRICS_HOST: '127.0.0.1',
      CONTROL_PLANE_METRICS_PORT: '19466',
    });
    const app = controlPlaneAppFromSettings(settings, {
      store: createEventStore({ kind: 'postgres', pool: db.pool }),
      pool: db.pool,
      logger: createLogger({ service: 'control-plane-test', level: 'error' }),
      metrics: createMetricsRegistry('control-plane', { defaultMetrics: false }),
    });
    server = await new Promise((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const created = await post('/api/v1/tenants', { name: 'own', subdomain: 'own-listeners' });
    expect(created.status).toBe(201);
    tenantId = String(created.body['id']);
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await db?.drop();
  });

  async function post(
    path: string,
    body: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it.each([
    ['the admin API', 'http://127.0.0.1:18080/api/v1/tenants'],
    ['the metrics listener', 'http://127.0.0.1:19466/metrics'],
    ['the metrics listener, spelled otherwise', 'http://[::ffff:7f00:1]:19466/metrics'],
  ])('refuses an origin on %s', async (_listener, url) => {
    const response = await post('/api/v1/origins', { tenant_id: tenantId, name: 'o', url });
    expect(response.status).toBe(400);
    expect(response.body['error']).toMatchObject({
      code: 'origin_address_blocked',
      details: [{ field: 'url', issue: expect.stringContaining("platform's own listeners") }],
    });
  });

  it('accepts another local port', async () => {
    const response = await post('/api/v1/origins', {
      tenant_id: tenantId,
      name: 'o',
      url: 'http://127.0.0.1:19467',
    });
    expect(response.status).toBe(201);
  });
});
