// `make replay`: rebuilds every read model from position 0 into a fresh schema and swaps it in,
// with a progress bar and events/s. Safe while the projector and the control plane run.
import '@vantageedge/shared/settings/env-file';
import { createEventStore, eventStoreConfigFromSettings } from '@vantageedge/shared/event-store/factory';
import {
  assertEventStoreSettings,
  assertEventStoreSharedAcrossProcesses,
} from '@vantageedge/shared/event-store/settings';
import { createLivePool, livenessFromSettings } from '@vantageedge/shared/postgres/connection-liveness';
import { warnOfUnverifiedDatabase } from '@vantageedge/shared/postgres/database-url-security';
import { checkSettingsOrExit, loadSettingsOrExit } from '@vantageedge/shared/settings/load-settings';
import { createProgressBar } from './progress-bar.js';
import { ReplayInProgressError, replayReadModels } from './replay.js';
import { readModelSettings } from './settings.js';

const config = loadSettingsOrExit('replay', readModelSettings);
checkSettingsOrExit('replay', () => {
  assertEventStoreSettings(config);
  assertEventStoreSharedAcrossProcesses(config);
});
warnOfUnverifiedDatabase('replay', config.DATABASE_URL);
const pool = createLivePool({ connectionString: config.DATABASE_URL, max: 4 }, livenessFromSettings(config));
const store = createEventStore(eventStoreConfigFromSettings(config, { pool }));
const bar = createProgressBar();

try {
  const result = await replayReadModels({
    store,
    pool,
    // Bigger than the live projector's batches: fewer round trips, and nobody waits on a rebuild batch.
    batchSize: 2000,
    onProgress: (progress) => bar.update(progress),
  });
  bar.done();
  process.stdout.write(
    `replay: ${result.events} events up to position ${result.position} in ${(result.elapsedMs / 1000).toFixed(1)} s ` +
      `(${result.eventsPerSecond} events/s); read models swapped in\n`,
  );
} catch (error) {
  bar.done();
  const message =
    error instanceof ReplayInProgressError || error instanceof Error ? error.message : String(error);
  process.stderr.write(`replay failed: ${message}\n`);
  process.exitCode = 1;
} finally {
  await store.close();
  await pool.end();
}
