import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createClerkTestKeys, OFFLINE_CLERK_ISSUER } from '@vantageedge/shared/testing/clerk-tokens';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSnapshotSigningKeys } from './compose-env.js';
import { devEnvironment } from './dev-settings.js';
import { type RunningVantageEdge, startVantageEdge } from './start-dev.js';

/**
 * make dev validates each part's settings as the part's own start does: a setting a production gateway
 * refuses is refused here too, before anything listens.
 */
describe('make dev start-up settings', () => {
  let db: TestDatabase;
  const running: RunningVantageEdge[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 've-dev-settings-'));

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const started of running) await started.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What startVantageEdge throws with `settings` over a test database, every listener on a free port. */
  async function refusal(settings: Record<string, string>): Promise<unknown> {
    const keys = await createClerkTestKeys();
    const env = devEnvironment({
      DATABASE_URL: db.url,
      CLERK_JWT_KEY: keys.publicKeyPem,
      CLERK_ISSUER: OFFLINE_CLERK_ISSUER,
      CONTROL_PLANE_PORT: '0',
      CONTROL_PLANE_METRICS_PORT: '0',
      GATEWAY_PORT: '0',
      GATEWAY_ADMIN_PORT: '0',
      DEMO_ORIGIN_PORT: '0',
      ...settings,
    });
    delete env['GATEWAY_TLS_PORT'];
    try {
      const logger = createLogger({ service: 'dev-test', level: 'error' });
      running.push(await startVantageEdge({ env, dataDir: '/nonexistent', logger }));
    } catch (error) {
      return error;
    }
    throw new Error(`make dev started with ${JSON.stringify(settings)}`);
  }

  it('refuses an admin listener opened to the network without GATEWAY_ADMIN_TOKEN, naming it', async () => {
    expect(await refusal({ GATEWAY_ADMIN_HOST: '0.0.0.0' })).toMatchObject({
      name: 'SettingsError',
      problems: [expect.objectContaining({ setting: 'GATEWAY_ADMIN_TOKEN' })],
    });
  });

  it('refuses snapshot signing keys on the in-memory bus, which would take them and never sign or verify', async () => {
    const files = writeSnapshotSigningKeys(dir);
    expect(
      await refusal({
        SNAPSHOT_SIGNING_KEY_FILE: files.privateKeyFile,
        SNAPSHOT_VERIFY_KEYS_FILE: files.publicKeyFile,
      }),
    ).toMatchObject({
      name: 'SettingsError',
      problems: [
        { setting: 'SNAPSHOT_SIGNING_KEY_FILE', issue: expect.stringContaining('kafka snapshot bus only') },
        { setting: 'SNAPSHOT_VERIFY_KEYS_FILE', issue: expect.stringContaining('kafka snapshot bus only') },
      ],
    });
  });

  it('reads the snapshot keys on the Kafka bus, as the projector and the gateway do', async () => {
    const notAKey = path.join(dir, 'not-a-key.pem');
    writeFileSync(notAKey, 'not a key');
    expect(
      await refusal({
        // Nowhere: the keys are read before any connection.
        KAFKA_BROKERS: '127.0.0.1:1',
        SNAPSHOT_VERIFY_KEYS_FILE: notAKey,
      }),
    ).toMatchObject({
      name: 'SettingsError',
      problems: [
        { setting: 'SNAPSHOT_VERIFY_KEYS_FILE', issue: expect.stringContaining('no PEM public key') },
      ],
    });
  });
});
