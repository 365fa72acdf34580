// `make republish-snapshots`: rebuilds the compacted snapshot topic from snapshot_state (after the
// topic was lost) by queueing every tenant for the running snapshot projector, then waits until all
// are published. Exit 1 if they are not published within REPUBLISH_TIMEOUT_SECONDS.
// With `--refold` it first rebuilds snapshot_state itself from the whole event log (after a fix of
// the snapshot fold: ends the quarantine of tenants whose events were parked; see refold.ts). Exit 1,
// nothing changed, when a changed tenant holds the log's last event (refold-versions.ts), or when the
// fold now refuses the creation of a tenant gateways serve, unless `--drop-unfoldable-tenants` says to
// take such tenants off every gateway (refold-drops.ts). Exit 2 on an argument it does not know.
import '@vantageedge/shared/settings/env-file';
import { createEventStore, eventStoreConfigFromSettings } from '@vantageedge/shared/event-store/factory';
import {
  assertEventStoreSettings,
  assertEventStoreSharedAcrossProcesses,
  eventStoreSettings,
} from '@vantageedge/shared/event-store/settings';
import {
  createLivePool,
  livenessFromSettings,
  postgresLivenessSettings,
} from '@vantageedge/shared/postgres/connection-liveness';
import { warnOfUnverifiedDatabase } from '@vantageedge/shared/postgres/database-url-security';
import { LOCAL_DEFAULTS, postgresUrl } from '@vantageedge/shared/settings/common-settings';
import { checkSettingsOrExit, loadSettingsOrExit } from '@vantageedge/shared/settings/load-settings';
import { refoldSnapshots } from './refold.js';
import { requestSnapshotRepublish, waitForSnapshotsPublished } from './republish.js';
import { republishSettings } from './settings.js';

const config = loadSettingsOrExit('republish-snapshots', {
  DATABASE_URL: postgresUrl.default(LOCAL_DEFAULTS.DATABASE_URL),
  ...postgresLivenessSettings,
  ...eventStoreSettings,
  ...republishSettings,
});
checkSettingsOrExit('republish-snapshots', () => {
  assertEventStoreSettings(config);
  assertEventStoreSharedAcrossProcesses(config);
});
const KNOWN_ARGUMENTS = new Set(['--refold', '--drop-unfoldable-tenants']);
const args = process.argv.slice(2);
const unknown = args.filter((arg) => !KNOWN_ARGUMENTS.has(arg));
const refold = args.includes('--refold');
const dropUnfoldableTenants = args.includes('--drop-unfoldable-tenants');
if (unknown.length > 0 || (dropUnfoldableTenants && !refold)) {
  process.stderr.write(
    unknown.length > 0
      ? `republish-snapshots: unknown argument ${unknown.join(' ')} (known: --refold, --drop-unfoldable-tenants)\n`
      : 'republish-snapshots: --drop-unfoldable-tenants goes with --refold\n',
  );
  process.exit(2);
}
warnOfUnverifiedDatabase('republish-snapshots', config.DATABASE_URL);
const pool = createLivePool({ connectionString: config.DATABASE_URL, max: 2 }, livenessFromSettings(config));

try {
  if (refold) {
    const store = createEventStore(eventStoreConfigFromSettings(config, { pool }));
    try {
      const result = await refoldSnapshots({ store, pool, dropUnfoldableTenants });
      process.stdout.write(
        `republish-snapshots: refolded ${result.events} events up to position ${result.position}` +
          ` (${result.parkedEvents} parked: see projection_parked_events)\n`,
      );
      for (const dropped of result.dropped) {
        const refused =
          dropped.position === null
            ? ''
            : ` (its ${dropped.eventType} at position ${dropped.position} refused)`;
        process.stdout.write(
          `republish-snapshots: tenant ${dropped.tenantId} dropped from every gateway${refused}: ` +
            'a tombstone is published and TenantDroppedFromGateways recorded in its audit log\n',
        );
      }
      if (result.movedForward.length > 0) {
        const shown = result.movedForward.slice(0, 20).join(', ');
        const more = result.movedForward.length > 20 ? ` and ${result.movedForward.length - 20} more` : '';
        process.stdout.write(
          `republish-snapshots: ${result.movedForward.length} tenants changed without a newer event, ` +
            `published as version ${result.position} (see their rollout status): ${shown}${more}\n`,
        );
      }
    } finally {
      await store.close();
    }
  }
  const { tenants } = await requestSnapshotRepublish(pool);
  process.stdout.write(
    `republish-snapshots: ${tenants} tenant snapshots queued for the snapshot projector\n`,
  );
  let last = -1;
  const published = await waitForSnapshotsPublished(pool, {
    timeoutMs: config.REPUBLISH_TIMEOUT_SECONDS * 1000,
    onProgress: (pending) => {
      if (pending !== last) process.stdout.write(`republish-snapshots: ${pending} left to publish\n`);
      last = pending;
    },
  });
  if (published) {
    process.stdout.write('republish-snapshots: every snapshot is on the topic again\n');
  } else {
    process.stderr.write(
      `republish-snapshots: ${last} snapshots still unpublished after ${config.REPUBLISH_TIMEOUT_SECONDS} s; ` +
        'is the snapshot projector running and Kafka reachable? They will be published when it is.\n',
    );
    process.exitCode = 1;
  }
} catch (error) {
  process.stderr.write(
    `republish-snapshots failed: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exitCode = 1;
} finally {
  await pool.end();
}
