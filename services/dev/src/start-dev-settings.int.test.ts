import { createLogger } from '@vantageedge/shared/observability/logger';
import { createClerkTestKeys, OFFLINE_CLERK_ISSUER } from '@vantageedge/shared/testing/clerk-tokens';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devEnvironment } from './dev-settings.js';
import { type RunningVantageEdge, startVantageEdge } from './start-dev.js';

/**
 * make dev validates each part's settings as the part's own start does: a setting a production gateway
 * refuses is refused here too, before anything listens.
 */
describe('make dev start-up settings', () => {
  let db: TestDatabase;
  let running: RunningVantageEdge | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await running?.close();
    await db?.drop();
  });

  it('refuses an admin listener opened to the network without GATEWAY_ADMIN_TOKEN, naming it', async () => {
    const keys = await createClerkTestKeys();
    const env = devEnvironment({
      DATABASE_URL: db.url,
      CLERK_JWT_KEY: keys.publicKeyPem,
      CLERK_ISSUER: OFFLINE_CLERK_ISSUER,
      CONTROL_PLANE_PORT: '0',
      CONTROL_PLANE_METRICS_PORT: '0',
      GATEWAY_PORT: '0',
      GATEWAY_ADMIN_PORT: '0',
      GATEWAY_TLS_PORT: '',
      DEMO_ORIGIN_PORT: '0',
      GATEWAY_ADMIN_HOST: '0.0.0.0',
    });
    delete env['GATEWAY_TLS_PORT'];
    const started = startVantageEdge({
      env,
      dataDir: '/nonexistent',
      logger: createLogger({ service: 'dev-test', level: 'error' }),
    });
    running = await started.catch(() => undefined);
    await expect(started).rejects.toMatchObject({
      name: 'SettingsError',
      problems: [expect.objectContaining({ setting: 'GATEWAY_ADMIN_TOKEN' })],
    });
  });
});
